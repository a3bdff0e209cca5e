//go:build !unix

package main

import (
	"errors"
	"time"
)

// selfCPU is not available here.
func selfCPU() (time.Duration, error) {
	return 0, errors.New("harness CPU is read with getrusage, which this system lacks")
}
