// Package configs holds the example lab topologies (YAML) and embeds them,
// so `capturectl demo` and `capturectl lab serve` work from any directory.
// Every file here is loaded by a test (lab.TestConfigsLoad).
package configs

import "embed"

// FS holds every *.yaml topology of this directory.
//
//go:embed *.yaml
var FS embed.FS

// Default is the topology `lab serve` and `demo` use without -c: the
// reverse-teaming article's experiment.
const Default = "lab-article.yaml"
