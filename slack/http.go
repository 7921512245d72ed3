package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
)

// maxRequestBody bounds a request from Slack (events are a few KB).
const maxRequestBody = 1 << 20

// signatureMaxAge is how old a request's timestamp may be (Slack's advice:
// five minutes), so a captured request cannot be replayed later.
const signatureMaxAge = 5 * time.Minute

// HTTPHandler returns the endpoint for http mode: Events API callbacks,
// interactivity (buttons) and slash commands, all at one URL (the
// manifest points every request URL at it). Every request is verified
// with the signing secret first; a request with a missing, stale or wrong
// signature gets 401 and changes nothing. Slack gets its 200 at once, and
// the answer runs afterwards.
func (a *Adapter) HTTPHandler() http.Handler {
	return http.HandlerFunc(a.serveHTTP)
}

func (a *Adapter) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &timeout) && timeout.Timeout():
		// The server's body deadline: Slack sends its few KB at once.
		a.log.Warn("slack request refused", "reason", "body too slow", "remote", r.RemoteAddr)
		http.Error(w, "request body too slow", http.StatusRequestTimeout)
		return
	case err != nil:
		http.Error(w, "request body unreadable", http.StatusBadRequest)
		return
	case len(body) > maxRequestBody:
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	if reason := a.verify(r.Header, body); reason != "" {
		a.log.Warn("slack request refused", "reason", reason, "remote", r.RemoteAddr)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	ctype, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ctype {
	case "application/json":
		a.serveEvent(w, r, body)
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			http.Error(w, "bad form", http.StatusBadRequest)
			return
		}
		if payload := form.Get("payload"); payload != "" {
			var cb slackapi.InteractionCallback
			if err := json.Unmarshal([]byte(payload), &cb); err != nil {
				http.Error(w, "bad interaction payload", http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusOK)
			a.onInteraction(cb, "")
			return
		}
		if form.Get("command") != "" {
			w.WriteHeader(http.StatusOK)
			a.onSlash(slashFromForm(form), "")
			return
		}
		http.Error(w, "unknown request", http.StatusBadRequest)
	default:
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
	}
}

func (a *Adapter) serveEvent(w http.ResponseWriter, r *http.Request, body []byte) {
	outer, err := slackevents.ParseEvent(body, slackevents.OptionNoVerifyToken())
	if err != nil {
		// Unknown inner event types are not errors worth a retry storm.
		a.log.Debug("slack event not understood", "err", err)
		w.WriteHeader(http.StatusOK)
		return
	}
	switch outer.Type {
	case slackevents.URLVerification:
		v, ok := outer.Data.(*slackevents.EventsAPIURLVerificationEvent)
		if !ok {
			http.Error(w, "bad challenge", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, v.Challenge)
	case slackevents.CallbackEvent:
		w.WriteHeader(http.StatusOK)
		retry, _ := strconv.Atoi(r.Header.Get("X-Slack-Retry-Num"))
		a.onEventsAPI(outer, retry)
	default:
		w.WriteHeader(http.StatusOK)
	}
}

// verify checks Slack's v0 request signature: an HMAC-SHA256, keyed with
// the signing secret, of "v0:<timestamp>:<body>", with a timestamp at most
// five minutes away from now. It returns why a request fails, or "".
func (a *Adapter) verify(h http.Header, body []byte) string {
	sig, stamp := h.Get("X-Slack-Signature"), h.Get("X-Slack-Request-Timestamp")
	if sig == "" || stamp == "" {
		return "missing signature headers"
	}
	secs, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil {
		return "bad timestamp"
	}
	if age := a.now().Sub(time.Unix(secs, 0)); age > signatureMaxAge || age < -signatureMaxAge {
		return "stale timestamp"
	}
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "v0="))
	if err != nil || !strings.HasPrefix(sig, "v0=") {
		return "malformed signature"
	}
	if !hmac.Equal(got, Sign(a.opts.SigningSecret, stamp, body)) {
		return "wrong signature"
	}
	return ""
}

// Sign computes Slack's v0 signature of a request body (without the "v0="
// prefix). Fakes and tests sign requests with it.
func Sign(secret, timestamp string, body []byte) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	_, _ = io.WriteString(mac, "v0:"+timestamp+":")
	mac.Write(body)
	return mac.Sum(nil)
}

func slashFromForm(f url.Values) slackapi.SlashCommand {
	return slackapi.SlashCommand{
		TeamID: f.Get("team_id"), TeamDomain: f.Get("team_domain"), EnterpriseID: f.Get("enterprise_id"),
		ChannelID: f.Get("channel_id"), ChannelName: f.Get("channel_name"),
		UserID: f.Get("user_id"), UserName: f.Get("user_name"),
		Command: f.Get("command"), Text: f.Get("text"),
		ResponseURL: f.Get("response_url"), TriggerID: f.Get("trigger_id"), APIAppID: f.Get("api_app_id"),
	}
}
