//go:build race

package oracle

func init() { raceEnabled = true }
