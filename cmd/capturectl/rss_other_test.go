//go:build !unix

package main

import "os"

// peakRSSKiB is not measured here.
func peakRSSKiB(*os.ProcessState) int64 { return 0 }
