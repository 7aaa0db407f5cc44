// Package policy holds the pure rules that retentiond's configuration is
// checked against and its daemon acts on: the retention grammar, the cron
// dialect of purge.schedule and the rules of API tokens (name, roles, hash). Each rule is written
// here once, because the config package (which checks a file at start-up and
// in `config check`) and the packages that act on the values (purge, auth,
// `token create`) must agree exactly: a second copy drifted once, so that
// `token create` printed names the daemon then refused.
//
// The package has no I/O and no clock, and depends on nothing internal
// except record's message helper, so config can import it without
// depending on the daemon.
package policy
