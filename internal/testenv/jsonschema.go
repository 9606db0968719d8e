package testenv

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// ValidateJSON checks data against the JSON schema in the file schema
// (formats asserted), failing the test with the validation error.
func ValidateJSON(t testing.TB, schema string, data []byte) {
	t.Helper()
	if err := SchemaError(schema, data); err != nil {
		t.Errorf("%v\n%s", err, data)
	}
}

// SchemaError returns why data does not validate against the JSON schema
// in the file schema (formats asserted), or nil.
func SchemaError(schema string, data []byte) error {
	f, err := os.Open(schema)
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", schema, err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	name := filepath.Base(schema)
	if err := c.AddResource(name, doc); err != nil {
		return err
	}
	sch, err := c.Compile(name)
	if err != nil {
		return fmt.Errorf("%s: %w", schema, err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return fmt.Errorf("does not validate against %s: %w", name, err)
	}
	return nil
}
