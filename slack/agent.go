package slack

import (
	"context"
	"strings"

	slackapi "github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"

	"github.com/orchat/orchat/bot"
)

// Slack's agent messaging experience (features.agent_view): the app's DM
// is where members talk to it, each question in a thread of its own. When
// a member opens the DM (app_home_opened, tab "messages") it offers
// suggested prompts; each thread gets a title from its first question and
// a status while an answer is on its way; what the member is looking at
// beside the DM (app_context_changed) is named to the model. Slash
// commands do not run in agent threads, so commands work there as plain
// messages ("balance", "compare a b: prompt").

// suggestedPrompts are offered when a member opens the app's DM.
var suggestedPrompts = []slackapi.AssistantThreadsPrompt{
	{Title: "Ask a model", Message: "Explain the difference between TCP and UDP in three sentences."},
	{Title: "Compare two models", Message: "compare google/gemini-2.5-flash openai/gpt-5-mini: Write a haiku about autumn."},
	{Title: "My balance", Message: "balance"},
}

// onHomeOpened answers app_home_opened: the Messages tab (the agent DM)
// gets suggested prompts, the Home tab the member's App Home.
func (a *Adapter) onHomeOpened(team string, ev *slackevents.AppHomeOpenedEvent) {
	if ev.User == "" {
		return
	}
	if ev.Context != nil {
		a.noteContext(team, ev.User, *ev.Context)
	}
	switch ev.Tab {
	case "messages":
		if !a.opts.AgentView || ev.Channel == "" {
			return
		}
		a.dispatch(func(ctx context.Context) {
			// thread_ts is left out: in the agent experience it makes the
			// call fail silently (docs.slack.dev).
			err := a.call(ctx, team, false, func() error {
				return a.agent.SetAssistantThreadsSuggestedPromptsContext(ctx, slackapi.AssistantThreadsSetSuggestedPromptsParameters{
					ChannelID: ev.Channel, Title: "Try one of these", Prompts: suggestedPrompts,
				})
			})
			if err != nil {
				a.log.Warn("slack: setting the DM's suggested prompts failed (the app needs assistant:write)", "err", err)
			}
		})
	case "home":
		a.dispatch(func(ctx context.Context) { a.publishHome(ctx, team, ev.User) })
	}
}

// onContextChanged remembers the channel a member looks at while the
// app's DM is open (the most relevant entity first); an empty context
// forgets it.
func (a *Adapter) onContextChanged(team string, ev *slackevents.AppContextChangedEvent) {
	if ev.User != "" {
		a.noteContext(team, ev.User, ev.Context)
	}
}

func (a *Adapter) noteContext(team, user string, c slackevents.AppContext) {
	key := team + ":" + user
	for _, e := range c.Entities {
		if e.Type == slackevents.AppContextEntityChannel && e.Value != "" {
			a.viewing.Put(key, e.Value)
			return
		}
	}
	a.viewing.Delete(key)
}

// viewContext is the context text for a member's DM question: the channel
// they are looking at, by mention (Slack shows its name), if any.
func (a *Adapter) viewContext(team, user string) string {
	ch, ok := a.viewing.Get(team + ":" + user)
	if !ok {
		return ""
	}
	return "The member is looking at the Slack channel <#" + ch + "> beside this conversation; they may ask about it."
}

// setTitle names an agent thread after its first question.
func (a *Adapter) setTitle(ctx context.Context, team, channel, thread, question string) {
	title := strings.Join(strings.Fields(question), " ")
	if title == "" {
		return
	}
	title = bot.Clip(title, 60)
	err := a.call(ctx, team, false, func() error {
		return a.agent.SetAssistantThreadsTitleContext(ctx, slackapi.AssistantThreadsSetTitleParameters{ChannelID: channel, ThreadTS: thread, Title: title})
	})
	if err != nil {
		a.log.Debug("slack: setting a thread's title failed", "err", err)
	}
}

// plainCommand reads a plain message in an agent thread as the command it
// names, typed the way the engine parses it ("/balance"): the first word
// is a command's name (its engine name or slash name), and a command
// without options takes no more words. "compare a b: prompt" names the
// models before the colon. Anything else is a question ("" returned).
func (a *Adapter) plainCommand(text string) string {
	text = strings.TrimSpace(text)
	word, rest, _ := strings.Cut(text, " ")
	word = strings.ToLower(strings.TrimSuffix(word, ":"))
	rest = strings.TrimSpace(rest)
	name := word
	if engine, ok := a.bySlash[word]; ok {
		name = engine
	}
	c := a.commands[name]
	if c == nil || name == "ask" {
		return ""
	}
	if rest == "" {
		return "/" + name
	}
	if len(c.Options) == 0 && len(c.Subcommands) == 0 {
		return ""
	}
	if name == "compare" && !strings.Contains(rest, "models:") {
		if models, prompt, ok := strings.Cut(rest, ": "); ok {
			if ids := strings.Fields(models); len(ids) >= 2 && strings.TrimSpace(prompt) != "" {
				return "/compare " + strings.TrimSpace(prompt) + " models:" + strings.Join(ids, ",")
			}
		}
	}
	return "/" + name + " " + rest
}

// onShortcut answers the "Ask orchat about this" message shortcut: a
// question about the message, answered in its thread, with the message
// as the model's context.
func (a *Adapter) onShortcut(cb slackapi.InteractionCallback, envelope string) {
	id, team, _, first := a.interaction(cb, envelope, "shortcut:")
	if !first {
		return
	}
	channel := cb.Channel.ID
	msg := cb.Message
	ts := cb.MessageTs
	if ts == "" {
		ts = msg.Timestamp
	}
	root := msg.ThreadTimestamp
	if root == "" {
		root = ts
	}
	a.dispatch(func(ctx context.Context) {
		botUser := ""
		if me, err := a.whoami(ctx, false); err == nil {
			botUser = me.UserID
		}
		author := msg.User
		if author != "" {
			author = a.userName(ctx, author)
		} else {
			author = "an app"
		}
		quoted := bot.Clip(plainText(msg.Text, botUser, false), 4000)
		ev := bot.Event{
			ID: "slack:" + id, Platform: bot.PlatformSlack,
			Identity: identity(team, cb.User.ID), UserName: a.userName(ctx, cb.User.ID),
			Community: "slack:" + team, Channel: channel,
			Text:    "What should I know about this message? Explain it and anything it needs.",
			Context: "The member ran \"Ask orchat about this\" on a message " + author + " wrote in this channel:\n\n" + quoted,
			Time:    a.now(), ManagesCommunity: a.managesWorkspace(cb.User.ID),
		}
		out := a.newOutput(team, channel, cb.User.ID)
		out.thread = root
		out.responseURL = cb.ResponseURL
		a.threads.Put(threadKey(channel, root), struct{}{})
		a.answer(ctx, ev, out)
	})
}

// onFeedback records a thumbs up or down on a streamed answer.
func (a *Adapter) onFeedback(cb slackapi.InteractionCallback, envelope, answer, model, vote string) {
	id, team, channel, first := a.interaction(cb, envelope, "action:")
	if !first {
		return
	}
	a.dispatch(func(ctx context.Context) {
		ev := bot.Event{
			ID: "slack:" + id, Platform: bot.PlatformSlack,
			Identity: identity(team, cb.User.ID), UserName: a.userName(ctx, cb.User.ID),
			Community: "slack:" + team, Channel: channel,
			Command: "feedback", Options: map[string]string{"answer": "slack:" + answer, "model": model, "vote": vote},
			Time: a.now(),
		}
		out := a.newOutput(team, channel, cb.User.ID)
		out.thread = cb.Message.ThreadTimestamp
		out.responseURL = cb.ResponseURL
		out.private = true
		a.answer(ctx, ev, out)
	})
}
