module github.com/capturectl/capturectl

go 1.26.0

require (
	github.com/gopacket/gopacket v1.7.7 // indirect
	github.com/vmware/govmomi v0.56.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/term v0.47.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
	mvdan.cc/sh/v3 v3.14.1 // indirect
)
