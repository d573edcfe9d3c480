package broker

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateGroups(t *testing.T) {
	tests := []struct {
		groups [][]int
		want   string // in the error; "" means valid
	}{
		{[][]int{{1}, {2, 3}}, ""},
		{[][]int{{3, 1}, {2}}, ""},
		{[][]int{{1}, {2}, {3}}, ""},
		{[][]int{{1, 2, 3}}, "at least two groups"},
		{nil, "at least two groups"},
		{[][]int{{1}, {2}}, "node 3 is in no group"},
		{[][]int{{1, 2}, {2, 3}}, "node 2 is in more than one group"},
		{[][]int{{1}, {2, 3, 4}}, "node 4: the cluster has nodes 1 to 3"},
		{[][]int{{0, 1}, {2, 3}}, "node 0"},
		{[][]int{{1}, {}, {2, 3}}, "group 2 is empty"},
	}
	for _, tt := range tests {
		err := validateGroups(tt.groups, 3)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("validateGroups(%v) = %v, want nil", tt.groups, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("validateGroups(%v) = %v, want %q", tt.groups, err, tt.want)
		}
	}
}

func TestBlockedFor(t *testing.T) {
	addrs := []string{"10.0.0.2", "10.0.0.6", "10.0.0.10"}
	groups := [][]int{{1}, {2, 3}}
	want := map[int][]string{1: {"10.0.0.6", "10.0.0.10"}, 2: {"10.0.0.2"}, 3: {"10.0.0.2"}}
	for i, w := range want {
		if got := blockedFor(i, groups, addrs); !slices.Equal(got, w) {
			t.Errorf("blockedFor(%d) = %v, want %v", i, got, w)
		}
	}
}

func TestNftScripts(t *testing.T) {
	heal := nftHealScript()
	// Declaring the table first makes the delete valid when there is none.
	if heal != "table inet bench\ndelete table inet bench\n" {
		t.Errorf("heal script = %q", heal)
	}
	p := nftPartitionScript([]string{"10.0.0.6", "10.0.0.10"})
	if !strings.HasPrefix(p, heal) {
		t.Errorf("partition script does not replace the table first:\n%s", p)
	}
	for _, want := range []string{
		"hook input",    // what arrives is dropped: senders hear nothing
		"policy accept", // everything else flows, clients included
		"ip saddr { 10.0.0.6, 10.0.0.10 } counter drop",
	} {
		if !strings.Contains(p, want) {
			t.Errorf("partition script lacks %q:\n%s", want, p)
		}
	}
	if strings.Contains(p, "hook output") || strings.Contains(p, "hook forward") {
		t.Errorf("partition script filters more than what arrives:\n%s", p)
	}
}
