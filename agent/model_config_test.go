package agent

import (
	"reflect"
	"strings"
	"testing"
)

func TestModelsConfigExampleStatesTheDefaults(t *testing.T) {
	c, err := ParseConfig("example.yaml", ExampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if c.Models == nil {
		t.Fatal("example.yaml has no models section")
	}
	var def ModelsConfig
	def.withDefaults()
	if !reflect.DeepEqual(*c.Models, def) {
		t.Errorf("example models section\n%+v\ndiffers from the defaults\n%+v", *c.Models, def)
	}
	noModels, err := ParseConfig("a.yaml", []byte("host: h\n"))
	if err != nil || noModels.Models != nil {
		t.Errorf("without a models section: %+v, %v", noModels.Models, err)
	}
	on, err := ParseConfig("a.yaml", []byte("host: h\nmodels: {}\n"))
	if err != nil || on.Models == nil || on.Models.Listen != DefaultModelsListen || on.Models.Reference.First != 1000 {
		t.Errorf("models: {} = %+v, %v", on.Models, err)
	}
}

func TestModelsConfigErrorsArePositioned(t *testing.T) {
	// Lines count from 1 at "host: h", prepended to each case.
	for _, tc := range []struct{ yaml, want string }{
		{"models:\n  listen: 0.0.0.0:9466\n", `a.yaml:3:11: models.listen "0.0.0.0:9466": want a loopback address`},
		{"models:\n  window: 5m\n  window_count: 100\n", `a.yaml:4:17: models: set window or window_count, not both`},
		{"models:\n  window_count: 5\n", `a.yaml:3:17: models.window_count 5: want 10 to`},
		{"models:\n  bins: 1\n", `a.yaml:3:9: models.bins 1: want 2 to 254`},
		{"models:\n  reference: {first: 3}\n", `a.yaml:3:22: models.reference.first 3: want 10 to 100000`},
		{"models:\n  reference:\n    file: /nonexistent/ref.ndjson\n", `a.yaml:4:11: models.reference.file: stat /nonexistent/ref.ndjson`},
		{"models:\n  listen: \"off\"\n", `a.yaml:3:3: models: listen is off and no logs are set`},
		{"models:\n  logs:\n    - from_start: true\n", `a.yaml:4:7: models.logs[0].path must be set`},
		{"models:\n  windw: 5m\n", `a.yaml:3:3: unknown key "windw" in models`},
		{"models:\n  window: 5s\n", `a.yaml:3:11: models.window 5s is too short for 10 panes`},
	} {
		_, err := ParseConfig("a.yaml", []byte("host: h\n"+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
