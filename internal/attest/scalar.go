package attest

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// ScalarFact renders a JSON string, number or boolean claim value as a
// fact value: at most maxLen bytes of printable ASCII. ok is false for
// anything else (objects, lists, null, longer or unprintable values),
// which token attestors leave out of the evidence.
func ScalarFact(raw json.RawMessage, maxLen int) (s string, ok bool) {
	var v any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return "", false
	}
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
	case bool:
		s = strconv.FormatBool(x)
	default:
		return "", false
	}
	if len(s) > maxLen {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return "", false
		}
	}
	return s, true
}
