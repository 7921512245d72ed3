package discord

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bwmarrin/discordgo"

	"github.com/orchat/orchat/bot"
)

// DefaultAttachmentHosts are the hosts Discord serves attachments from:
// the CDN (an attachment's url) and the media proxy (its proxy_url).
func DefaultAttachmentHosts() []string {
	return []string{"cdn.discordapp.com", "media.discordapp.net"}
}

// maxAttachmentRedirects bounds a chain of redirects between allowed hosts.
const maxAttachmentRedirects = 3

// errOffHost marks a redirect away from the attachment hosts.
var errOffHost = errors.New("discord: attachment redirect off the allowed hosts")

// attachments turns a message's files into attachments whose Fetch
// downloads them from Discord's attachment hosts only.
func (a *Adapter) attachments(in []*discordgo.MessageAttachment) []bot.Attachment {
	var out []bot.Attachment
	for _, f := range in {
		if f == nil {
			continue
		}
		u := f.URL
		out = append(out, bot.Attachment{
			Name: f.Filename, ContentType: f.ContentType, Size: int64(f.Size), URL: u,
			Fetch: func(ctx context.Context, max int64) ([]byte, error) { return a.download(ctx, u, max) },
		})
	}
	return out
}

// download fetches at most max bytes of an attachment: only over https,
// only from an allowed host, never following a redirect off them, and
// never reading more than max bytes whatever the file's size claims. The
// errors are sentences for the user; the address is not in them.
func (a *Adapter) download(ctx context.Context, rawURL string, max int64) ([]byte, error) {
	if !a.attachmentHost(rawURL) {
		return nil, errors.New("it is not stored on Discord.")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, errors.New("its address is not valid.")
	}
	resp, err := a.files.Do(req)
	if errors.Is(err, errOffHost) {
		a.log.Warn("an attachment redirected off Discord's attachment hosts; not followed", "host", req.URL.Host)
		return nil, errors.New("Discord sent it from somewhere else, which I do not follow.")
	}
	if err != nil {
		return nil, errors.New("the download from Discord failed.")
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return nil, errors.New("Discord no longer has it (attachment links expire); send it again.")
		}
		return nil, fmt.Errorf("Discord answered %d.", resp.StatusCode)
	}
	// The size cap holds while reading: a file larger than it claims (or
	// endless) costs at most max bytes.
	data, err := io.ReadAll(io.LimitReader(resp.Body, max))
	if err != nil {
		return nil, errors.New("the download from Discord broke off.")
	}
	return data, nil
}

// attachmentHost reports whether rawURL is https on an allowed attachment
// host. A host listed without a port allows the default port only.
func (a *Adapter) attachmentHost(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for _, h := range a.opts.AttachmentHosts {
		h = strings.ToLower(h)
		if h == host && (port == "" || port == "443") || h == host+":"+port {
			return true
		}
	}
	return false
}

// filesClient is the client attachments are downloaded with: base's
// transport and timeout, with a redirect policy that only moves between
// allowed hosts (and never to http).
func (a *Adapter) filesClient(base *http.Client) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if base != nil {
		c.Transport = base.Transport
		if base.Timeout > 0 {
			c.Timeout = base.Timeout
		}
	}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if !a.attachmentHost(req.URL.String()) {
			return errOffHost
		}
		if len(via) > maxAttachmentRedirects {
			return errors.New("discord: too many attachment redirects")
		}
		return nil
	}
	return c
}
