package frames

import "testing"

func TestUnderscorePolicy_FieldVerdict(t *testing.T) {
	for _, c := range []struct {
		p    UnderscorePolicy
		name string
		want Verdict
	}{
		{UnderscoreReject, "x-user", FieldKeep},
		{UnderscoreReject, "x_user", FieldReject},
		{UnderscoreReject, "_", FieldReject},
		{UnderscoreDrop, "x_user", FieldDrop},
		{UnderscoreDrop, "x-user", FieldKeep},
		{UnderscoreAllow, "x_user", FieldKeep},
	} {
		if got := c.p.FieldVerdict(c.name); got != c.want {
			t.Errorf("policy %d, %q: %d, want %d", c.p, c.name, got, c.want)
		}
	}
}
