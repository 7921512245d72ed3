// Package bot is orchat's domain: the plain types every part speaks
// (identities, events, messages, models, ledger entries), the small
// interfaces the pipeline needs (Users, Ledger, Votes, Preferences, Catalog,
// Chat, History, Output), the Error type with its codes, the helpers every
// part shares (Cache, FormatWait, Clip, Plural), and the Engine that turns a
// platform event into a command call.
//
// It imports only the standard library. Every other package implements one
// dependency in terms of these types; the stack package wires them together.
package bot
