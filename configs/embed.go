// Package configs holds the example lab topologies (YAML) and embeds them,
// so `capturectl demo`, `capturectl lab serve` and the `lab:` of a check
// scenario find them by name from any directory; checks/ holds the shipped
// check scenarios, which are not embedded. Every topology is loaded by a
// test (lab.TestConfigsLoad) and every check is run by one
// (cmd/capturectl's TestShippedChecks).
package configs

import "embed"

// FS holds every *.yaml topology of this directory.
//
//go:embed *.yaml
var FS embed.FS

// Default is the topology `lab serve` and `demo` use without -c: the
// reverse-teaming article's experiment.
const Default = "lab-article.yaml"
