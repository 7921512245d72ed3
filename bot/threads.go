package bot

import "context"

// ThreadStore remembers the threads the bot started, so an adapter answers
// every message in them without a mention (Discord: threads started from
// a mention). Threads are named by the adapter, platform first
// ("discord:<thread id>"), so one store can serve every platform and
// every process: a store shared through the database lets any process
// (any shard) answer in a thread another one started. BotThread is asked
// for messages that neither mention nor reply to the bot, on the
// platform's event path: an implementation should answer from memory
// (cache what it reads).
type ThreadStore interface {
	// StartedThread records that the bot started a thread.
	StartedThread(ctx context.Context, thread string) error
	// BotThread reports whether the bot started a thread.
	BotThread(ctx context.Context, thread string) (bool, error)
}
