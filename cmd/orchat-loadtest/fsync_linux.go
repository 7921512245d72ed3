package main

import (
	"syscall"
	"time"
)

// fsyncDelay blocks the calling thread for d in a system call, as a slow
// fsync does (a goroutine's time.Sleep would free the thread and, on an
// idle process, last at least a millisecond).
func fsyncDelay(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var left syscall.Timespec
		if err := syscall.Nanosleep(&ts, &left); err != syscall.EINTR {
			return
		}
		ts = left
	}
}
