package discordtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The fake CDN serves attachments the way cdn.discordapp.com does: over
// https, at /attachments/CHANNEL/ATTACHMENT/FILENAME with the signed
// query Discord has added since December 2023 (ex: expiry and is: issue
// time, both Unix seconds in hex; hm: a signature over them), and answers
// "This content is no longer available." with 404 once a link has expired
// or when its signature does not match. Tests allow its host (CDNHost) and
// download with its client (CDNClient), which trusts its certificate.

// cdnFile is one attachment the CDN holds.
type cdnFile struct {
	contentType string
	data        []byte
	handler     http.Handler // when set, serves the download instead
}

func (s *Server) startCDN() {
	s.cdnKey = []byte(randomToken())
	s.cdn = httptest.NewTLSServer(http.HandlerFunc(s.serveCDN))
}

// CDNHost is the fake CDN's host:port, the one attachment host to allow.
func (s *Server) CDNHost() string { return strings.TrimPrefix(s.cdn.URL, "https://") }

// CDNClient returns a client that trusts the fake CDN's certificate.
func (s *Server) CDNClient() *http.Client { return s.cdn.Client() }

// CDNRequests counts the downloads the CDN was asked for.
func (s *Server) CDNRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cdnHits
}

// Upload stores a file on the CDN and returns it as an attachment of a
// message in channel, with a signed URL valid for a day.
func (s *Server) Upload(channel, filename, contentType string, data []byte) Attachment {
	return s.storeAttachment(channel, filename, contentType, len(data), cdnFile{contentType: contentType, data: data}, 24*time.Hour)
}

// UploadExpired is Upload with a link that expired an hour ago.
func (s *Server) UploadExpired(channel, filename, contentType string, data []byte) Attachment {
	return s.storeAttachment(channel, filename, contentType, len(data), cdnFile{contentType: contentType, data: data}, -time.Hour)
}

// ServeAttachment returns an attachment on the CDN, claiming size bytes,
// whose download h serves: a redirect, a body larger than claimed, one
// that never ends.
func (s *Server) ServeAttachment(channel, filename, contentType string, size int, h http.Handler) Attachment {
	return s.storeAttachment(channel, filename, contentType, size, cdnFile{contentType: contentType, handler: h}, 24*time.Hour)
}

func (s *Server) storeAttachment(channel, filename, contentType string, size int, f cdnFile, life time.Duration) Attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeAttachmentLocked(channel, filename, contentType, size, f, life)
}

func (s *Server) storeAttachmentLocked(channel, filename, contentType string, size int, f cdnFile, life time.Duration) Attachment {
	id := s.snowflake()
	path := "/attachments/" + channel + "/" + id + "/" + url.PathEscape(filename)
	s.cdnFiles[path] = f
	now := time.Now()
	ex := strconv.FormatInt(now.Add(life).Unix(), 16)
	is := strconv.FormatInt(now.Unix(), 16)
	// Discord's links end with a bare "&", too.
	u := s.cdn.URL + path + "?ex=" + ex + "&is=" + is + "&hm=" + s.sign(path, ex, is) + "&"
	return Attachment{ID: id, Filename: filename, ContentType: contentType, Size: size, URL: u, ProxyURL: u}
}

func (s *Server) sign(path, ex, is string) string {
	m := hmac.New(sha256.New, s.cdnKey)
	m.Write([]byte(path + "|" + ex + "|" + is))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.cdnHits++
	f, ok := s.cdnFiles[r.URL.Path]
	s.mu.Unlock()
	q := r.URL.Query()
	ex, err := strconv.ParseInt(q.Get("ex"), 16, 64)
	if !ok || err != nil || time.Now().Unix() > ex || !hmac.Equal([]byte(q.Get("hm")), []byte(s.sign(r.URL.Path, q.Get("ex"), q.Get("is")))) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("This content is no longer available."))
		return
	}
	if f.handler != nil {
		f.handler.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", f.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Write(f.data)
}
