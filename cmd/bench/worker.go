package main

import (
	"os"

	"github.com/benchmq/bench/scenarios/simworker"
)

func cmdWorker(args []string) int { return simworker.Main(args, os.Stderr) }
