package slack

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	slackapi "github.com/slack-go/slack"

	"github.com/orchat/orchat/bot"
)

// fakeAPI is a function-field fake of webAPI, the Web API calls the
// adapter makes: a test sets the ones it expects; any other call fails it.
type fakeAPI struct {
	t        *testing.T
	replies  func(ctx context.Context, p *slackapi.GetConversationRepliesParameters) ([]slackapi.Message, bool, string, error)
	userInfo func(ctx context.Context, user string) (*slackapi.User, error)
}

var _ webAPI = (*fakeAPI)(nil)

var errUnexpected = errors.New("fakeAPI: unexpected call")

func (f *fakeAPI) unexpected(name string) error {
	f.t.Helper()
	f.t.Errorf("the adapter called %s, which this test does not expect", name)
	return errUnexpected
}

func (f *fakeAPI) AuthTestContext(context.Context) (*slackapi.AuthTestResponse, error) {
	return nil, f.unexpected("auth.test")
}

func (f *fakeAPI) PostMessageContext(context.Context, string, ...slackapi.MsgOption) (string, string, error) {
	return "", "", f.unexpected("chat.postMessage")
}

func (f *fakeAPI) UpdateMessageContext(context.Context, string, string, ...slackapi.MsgOption) (string, string, string, error) {
	return "", "", "", f.unexpected("chat.update")
}

func (f *fakeAPI) PostEphemeralContext(context.Context, string, string, ...slackapi.MsgOption) (string, error) {
	return "", f.unexpected("chat.postEphemeral")
}

func (f *fakeAPI) GetConversationRepliesContext(ctx context.Context, p *slackapi.GetConversationRepliesParameters) ([]slackapi.Message, bool, string, error) {
	if f.replies == nil {
		return nil, false, "", f.unexpected("conversations.replies")
	}
	return f.replies(ctx, p)
}

func (f *fakeAPI) GetConversationHistoryContext(context.Context, *slackapi.GetConversationHistoryParameters) (*slackapi.GetConversationHistoryResponse, error) {
	return nil, f.unexpected("conversations.history")
}

func (f *fakeAPI) GetUserInfoContext(ctx context.Context, user string, _ ...slackapi.GetUserInfoOption) (*slackapi.User, error) {
	if f.userInfo == nil {
		return nil, f.unexpected("users.info")
	}
	return f.userInfo(ctx, user)
}

func (f *fakeAPI) UploadFileContext(context.Context, slackapi.UploadFileParameters) (*slackapi.FileSummary, error) {
	return nil, f.unexpected("files.getUploadURLExternal")
}

// noHandler answers nothing: these tests call the adapter's parts directly.
type noHandler struct{}

func (noHandler) Handle(context.Context, bot.Event, bot.Output) error { return nil }

// adapterWith is an adapter whose Web API is api.
func adapterWith(t *testing.T, api *fakeAPI) *Adapter {
	t.Helper()
	api.t = t
	a, err := New(Options{BotToken: "xoxb-test", AppToken: "xapp-test", Handler: noHandler{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.api = api
	return a
}

func TestWebAPIFake(t *testing.T) {
	me := &self{UserID: "UORCHAT", BotID: "BORCHAT", TeamID: "T1"}

	t.Run("ThreadFoundOnALaterPageIsRemembered", func(t *testing.T) {
		calls := 0
		a := adapterWith(t, &fakeAPI{replies: func(_ context.Context, p *slackapi.GetConversationRepliesParameters) ([]slackapi.Message, bool, string, error) {
			calls++
			if p.Cursor == "" {
				return []slackapi.Message{{Msg: slackapi.Msg{User: "UALICE"}}}, true, "page2", nil
			}
			return []slackapi.Message{{Msg: slackapi.Msg{BotID: "BORCHAT"}}}, false, "", nil
		}})
		if !a.inThread(context.Background(), "C1", "1.0001", me) {
			t.Fatal("the bot's reply on the second page was not found")
		}
		if !a.inThread(context.Background(), "C1", "1.0001", me) || calls != 2 {
			t.Fatalf("conversations.replies called %d times for two questions about one thread, want 2 (one per page, then remembered)", calls)
		}
	})

	t.Run("UsersInfoDownFallsBackToTheID", func(t *testing.T) {
		// users.info failing must not fail the answer: the user is called
		// by their id, and Slack is not asked again for an hour.
		calls := 0
		a := adapterWith(t, &fakeAPI{userInfo: func(context.Context, string) (*slackapi.User, error) {
			calls++
			return nil, errors.New("ratelimited")
		}})
		for range 2 {
			if got := a.userName(context.Background(), "UALICE"); got != "UALICE" {
				t.Fatalf("userName=%q, want the user id", got)
			}
		}
		if calls != 1 {
			t.Fatalf("users.info called %d times, want 1", calls)
		}
	})
}
