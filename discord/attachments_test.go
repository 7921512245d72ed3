package discord_test

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/orchat/orchat/discord/discordtest"
)

// TestAttachments: files are downloaded from Discord's attachment hosts
// only (here the fake's CDN), over https, never following a redirect off
// them, and never more than the size cap, whatever the event names.
func TestAttachments(t *testing.T) {
	// elsewhere is a server that must never be asked: 127.0.0.1 as a
	// hostile event or redirect would name it, with something to steal.
	var stolen atomic.Int32
	secret := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		io.WriteString(w, "internal secret: swordfish")
	})
	plain := httptest.NewServer(secret)
	t.Cleanup(plain.Close)
	otherTLS := httptest.NewTLSServer(secret)
	t.Cleanup(otherTLS.Close)

	// ask mentions the bot with one attachment and returns what the model
	// was asked and everything the bot posted.
	ask := func(t *testing.T, w *world, a discordtest.Attachment) (prompt, posted string) {
		t.Helper()
		m, replies := w.mention(w.alice, w.general, "what is in the file?", discordtest.WithAttachment(a))
		var texts []string
		for _, r := range replies {
			texts = append(texts, r.Text())
		}
		for _, b := range w.dc.BotMessages(m.ChannelID) {
			texts = append(texts, b.Text())
		}
		if reqs := w.asked("what is in the file?"); len(reqs) > 0 {
			last := reqs[len(reqs)-1].Messages
			prompt = last[len(last)-1].Content
			for _, img := range last[len(last)-1].Images {
				prompt += "\n[image " + img[:min(len(img), 22)] + "]"
			}
		}
		return prompt, strings.Join(texts, "\n")
	}
	noSecret := func(t *testing.T, prompt string) {
		t.Helper()
		if n := stolen.Load(); n != 0 || strings.Contains(prompt, "swordfish") {
			t.Fatalf("a server off Discord was asked %d times; the model got %q", n, prompt)
		}
	}

	t.Run("TextFromTheCDN", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		prompt, _ := ask(t, w, w.dc.Upload(w.general, "notes.txt", "text/plain; charset=utf-8", []byte("The secret word is pelican.")))
		if !strings.Contains(prompt, "The secret word is pelican.") {
			t.Fatalf("the model did not get the file: %q", prompt)
		}
	})
	t.Run("ImageFromTheCDN", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		var b bytes.Buffer
		if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
			t.Fatal(err)
		}
		prompt, _ := ask(t, w, w.dc.Upload(w.general, "cat.png", "image/png", b.Bytes()))
		if !strings.Contains(prompt, "[image data:image/png;base64,") {
			t.Fatalf("the model did not get the image as data: %q", prompt)
		}
	})
	for _, tt := range []struct {
		name string
		url  func(w *world) string
		note string
	}{
		{"PlainHTTP", func(*world) string { return plain.URL + "/attachments/1/2/notes.txt" }, "it is not stored on Discord."},
		{"AnotherHTTPSHost", func(*world) string { return otherTLS.URL + "/attachments/1/2/notes.txt" }, "it is not stored on Discord."},
		{"TheCDNOverHTTP", func(w *world) string {
			return "http://" + w.dc.CDNHost() + "/attachments/1/2/notes.txt"
		}, "it is not stored on Discord."},
		{"CredentialsInTheURL", func(w *world) string {
			return "https://user:pw@" + w.dc.CDNHost() + "/attachments/1/2/notes.txt"
		}, "it is not stored on Discord."},
		{"NoURL", func(*world) string { return "" }, "it is not stored on Discord."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			a := discordtest.Attachment{ID: "1", Filename: "notes.txt", ContentType: "text/plain", Size: 20, URL: tt.url(w)}
			if a.URL == "" {
				a.URL = " " // the fake fills in an empty URL; a blank one is none
			}
			prompt, posted := ask(t, w, a)
			noSecret(t, prompt)
			if want := "I could not download notes.txt: " + tt.note; !strings.Contains(posted, want) {
				t.Fatalf("want the note %q; the bot posted:\n%s", want, posted)
			}
		})
	}
	t.Run("RedirectOffTheCDN", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		a := w.dc.ServeAttachment(w.general, "notes.txt", "text/plain", 20, http.RedirectHandler(plain.URL+"/secret.txt", http.StatusFound))
		prompt, posted := ask(t, w, a)
		noSecret(t, prompt)
		if want := "I could not download notes.txt: Discord sent it from somewhere else, which I do not follow."; !strings.Contains(posted, want) {
			t.Fatalf("want the note %q; the bot posted:\n%s", want, posted)
		}
	})
	t.Run("RedirectWithinTheCDN", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		real := w.dc.Upload(w.general, "moved.txt", "text/plain", []byte("The secret word is heron."))
		prompt, _ := ask(t, w, w.dc.ServeAttachment(w.general, "notes.txt", "text/plain", 25, http.RedirectHandler(real.URL, http.StatusFound)))
		if !strings.Contains(prompt, "The secret word is heron.") {
			t.Fatalf("a redirect between attachment hosts was not followed: %q", prompt)
		}
	})
	t.Run("LargerThanItClaims", func(t *testing.T) {
		// The event says 20 bytes; the body never ends. The cap holds while
		// reading: the download stops at the limit and the file is left out.
		t.Parallel()
		w := newWorld(t)
		var sent atomic.Int64
		endless := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Type", "text/plain")
			chunk := bytes.Repeat([]byte("a"), 32<<10)
			for r.Context().Err() == nil {
				n, err := rw.Write(chunk)
				sent.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
		prompt, posted := ask(t, w, w.dc.ServeAttachment(w.general, "notes.txt", "text/plain", 20, endless))
		if strings.Contains(prompt, "aaaa") {
			t.Fatalf("the model got the oversized file")
		}
		if want := "I could not download notes.txt: it is larger than 98 KB."; !strings.Contains(posted, want) {
			t.Fatalf("want the note %q; the bot posted:\n%s", want, posted)
		}
		t.Logf("the CDN wrote %d bytes before the download stopped (limit 100,000)", sent.Load())
	})
	t.Run("ExpiredLink", func(t *testing.T) {
		t.Parallel()
		w := newWorld(t)
		_, posted := ask(t, w, w.dc.UploadExpired(w.general, "notes.txt", "text/plain", []byte("old")))
		if want := "I could not download notes.txt: Discord no longer has it (attachment links expire); send it again."; !strings.Contains(posted, want) {
			t.Fatalf("want the note %q; the bot posted:\n%s", want, posted)
		}
	})
}
