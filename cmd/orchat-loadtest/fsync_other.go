//go:build !linux

package main

import "time"

// fsyncDelay waits d, as a slow fsync does.
func fsyncDelay(d time.Duration) { time.Sleep(d) }
