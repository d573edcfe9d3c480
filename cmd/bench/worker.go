package main

import (
	"os"

	"github.com/benchmq/bench/internal/simworker"
)

func cmdWorker(args []string) int { return simworker.Main(args, os.Stderr) }
