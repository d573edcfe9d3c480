package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A cluster owned by a process (not a detached one) is registered in a
// directory of its own, with the owner's pid and start time. A test binary
// killed by its timeout cannot close its cluster; the next StartCluster on
// this machine finds the entry of a dead owner and removes what it left:
// nodes, namespaces, directories.

type registryEntry struct {
	Cluster    ClusterInfo `json:"cluster"`
	OwnerPID   int         `json:"owner_pid"`
	OwnerStart uint64      `json:"owner_start"` // clock ticks after boot; guards against pid reuse
}

func registryDir() string { return filepath.Join(os.TempDir(), "bench-clusters") }

func register(info ClusterInfo) error {
	start, err := procStart(os.Getpid())
	if err != nil {
		return fmt.Errorf("register cluster %s: %w", info.ID, err)
	}
	b, err := json.Marshal(registryEntry{Cluster: info, OwnerPID: os.Getpid(), OwnerStart: start})
	if err != nil {
		return fmt.Errorf("register cluster %s: %w", info.ID, err)
	}
	if err := os.MkdirAll(registryDir(), 0o700); err != nil {
		return fmt.Errorf("register cluster %s: %w", info.ID, err)
	}
	// Written whole, then renamed: a reaper never reads half an entry. 0600:
	// the node URLs hold the cluster's password.
	tmp := filepath.Join(registryDir(), "."+info.ID+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("register cluster %s: %w", info.ID, err)
	}
	if err := os.Rename(tmp, filepath.Join(registryDir(), info.ID+".json")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("register cluster %s: %w", info.ID, err)
	}
	return nil
}

func unregister(id string) {
	// Absent for a detached cluster; nothing else can go wrong that matters.
	_ = os.Remove(filepath.Join(registryDir(), id+".json"))
}

// reapStale removes the clusters whose owner process is gone.
func reapStale(ctx context.Context, cfg ManagedConfig) error {
	files, err := filepath.Glob(filepath.Join(registryDir(), "*.json"))
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // removed meanwhile by its owner
		}
		var e registryEntry
		if err := json.Unmarshal(b, &e); err != nil || e.Cluster.ID != strings.TrimSuffix(filepath.Base(f), ".json") {
			errs = append(errs, fmt.Errorf("read %s: not a cluster entry", f))
			continue
		}
		if ownerAlive(e.OwnerPID, e.OwnerStart) {
			continue
		}
		c, err := AttachCluster(e.Cluster, ClusterConfig{Node: cfg})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = c.Close(rctx)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("remove stale cluster %s: %w", e.Cluster.ID, err))
		}
	}
	return errors.Join(errs...)
}

func ownerAlive(pid int, start uint64) bool {
	if !pidAlive(pid) {
		return false
	}
	s, err := procStart(pid)
	return err != nil || s == start // unknown start time: assume alive
}
