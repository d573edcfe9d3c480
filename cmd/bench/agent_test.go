package main

import (
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The Kubernetes example is a Deployment whose container runs bench agent
// with flags the command takes, the broker URL from a Secret, and no port.
func TestKubernetesAgentManifest(t *testing.T) {
	data, err := os.ReadFile("../../deploy/k8s/agent.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Spec       struct {
			Replicas int `yaml:"replicas"`
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
				Spec struct {
					Grace      int `yaml:"terminationGracePeriodSeconds"`
					Containers []struct {
						Image string   `yaml:"image"`
						Args  []string `yaml:"args"`
						Ports []any    `yaml:"ports"`
						Env   []struct {
							Name      string         `yaml:"name"`
							Value     string         `yaml:"value"`
							ValueFrom map[string]any `yaml:"valueFrom"`
						} `yaml:"env"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" || d.Spec.Replicas < 1 {
		t.Fatalf("want an apps/v1 Deployment with replicas: %+v", d)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Metadata.Labels[k] != v {
			t.Fatalf("the selector's %s=%s does not match the pod template's labels", k, v)
		}
	}
	if g := d.Spec.Template.Spec.Grace; g <= 30 {
		t.Errorf("terminationGracePeriodSeconds %d: the agent's workers get 30 s to drain", g)
	}
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	c := cs[0]
	if len(c.Args) == 0 || c.Args[0] != "agent" {
		t.Fatalf("args %q: want bench agent", c.Args)
	}
	if len(c.Ports) != 0 {
		t.Errorf("the agent exposes ports %v: it needs none", c.Ports)
	}
	// The flags are the command's own: parse them with its flag set.
	fs, f := newAgentFlags()
	if err := fs.Parse(c.Args[1:]); err != nil {
		t.Fatalf("bench agent rejects the manifest's args %q: %v", c.Args[1:], err)
	}
	if labels := *f.labels; len(labels) == 0 || !strings.HasPrefix(labels[0], "role=") {
		t.Errorf("labels %q: want a role placement can select", labels)
	}
	url := false
	for _, e := range c.Env {
		if e.Name == "AMQP_URL" {
			url = e.Value == "" && e.ValueFrom["secretKeyRef"] != nil
		}
	}
	if !url {
		t.Error("AMQP_URL must come from a Secret (secretKeyRef), never inline")
	}
	if strings.Contains(string(data), "guest:guest") {
		t.Error("the manifest holds a credential")
	}
}
