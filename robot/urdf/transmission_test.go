package urdf

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTransmissions(t *testing.T) {
	doc := `<robot name="r">
  <link name="a"/><link name="b"/>
  <joint name="j1" type="revolute"><parent link="a"/><child link="b"/><limit lower="-1" upper="1" velocity="1" effort="1"/></joint>
  <transmission name="t1">
    <type>transmission_interface/SimpleTransmission</type>
    <joint name="j1"><hardwareInterface>hardware_interface/PositionJointInterface</hardwareInterface><offset>0.25</offset></joint>
    <actuator name="m1"><mechanicalReduction>-50</mechanicalReduction></actuator>
  </transmission>
  <transmission name="t2" type="pr2_mechanism_model/SimpleTransmission">
    <joint name="j2"/><actuator name="m2"/><mechanicalReduction>3.5</mechanicalReduction>
  </transmission>
</robot>`
	tr, err := ParseTransmissions(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []Transmission{
		{Name: "t1", Joint: "j1", Actuator: "m1", Reduction: -50, Offset: 0.25},
		{Name: "t2", Joint: "j2", Actuator: "m2", Reduction: 3.5},
	}
	if len(tr) != 2 || tr[0] != want[0] || tr[1] != want[1] {
		t.Errorf("got %+v, want %+v", tr, want)
	}
	// The shipped robots have none, and Parse still ignores transmissions.
	if _, err := Parse(strings.NewReader(doc)); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

func TestParseTransmissionsRefuses(t *testing.T) {
	wrap := func(body string) string { return `<robot name="r"><link name="a"/>` + body + `</robot>` }
	simple := func(inner string) string {
		return wrap(`<transmission name="t"><type>transmission_interface/SimpleTransmission</type>` + inner + `</transmission>`)
	}
	for _, tc := range []struct {
		name, doc string
		is        error
		want      string
	}{
		{"no name", wrap(`<transmission><type>SimpleTransmission</type></transmission>`), ErrInvalid, "transmission 1 has no name"},
		{"no type", wrap(`<transmission name="t"/>`), ErrInvalid, `transmission "t": no <type>`},
		{"differential", wrap(`<transmission name="t"><type>transmission_interface/DifferentialTransmission</type></transmission>`), ErrUnsupported, `"transmission_interface/DifferentialTransmission"`},
		{"two joints", simple(`<joint name="a"/><joint name="b"/><actuator name="m"><mechanicalReduction>1</mechanicalReduction></actuator>`), ErrInvalid, "2 <joint> and 1 <actuator>"},
		{"no reduction", simple(`<joint name="a"/><actuator name="m"/>`), ErrInvalid, `actuator "m": no <mechanicalReduction>`},
		{"zero reduction", simple(`<joint name="a"/><actuator name="m"><mechanicalReduction>0</mechanicalReduction></actuator>`), ErrInvalid, "is 0"},
		{"NaN reduction", simple(`<joint name="a"/><actuator name="m"><mechanicalReduction>nan</mechanicalReduction></actuator>`), ErrInvalid, "not a finite number"},
		{"bad offset", simple(`<joint name="a"><offset>x</offset></joint><actuator name="m"><mechanicalReduction>1</mechanicalReduction></actuator>`), ErrInvalid, `joint "a": <offset>`},
		{"unnamed joint", simple(`<joint/><actuator name="m"><mechanicalReduction>1</mechanicalReduction></actuator>`), ErrInvalid, "<joint> has no name"},
		{"joint twice", wrap(`<transmission name="t1" type="SimpleTransmission"><joint name="a"/><actuator name="m"/><mechanicalReduction>1</mechanicalReduction></transmission>` +
			`<transmission name="t2" type="SimpleTransmission"><joint name="a"/><actuator name="n"/><mechanicalReduction>1</mechanicalReduction></transmission>`), ErrInvalid, `joint "a" is also driven by transmission "t1"`},
		{"not a robot", `<model/>`, ErrInvalid, "want <robot>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTransmissions(strings.NewReader(tc.doc))
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %v saying %q", err, tc.is, tc.want)
			}
		})
	}
}

func FuzzParseTransmissions(f *testing.F) {
	f.Add([]byte(`<robot name="r"><transmission name="t" type="SimpleTransmission"><joint name="a"/><actuator name="m"/><mechanicalReduction>2</mechanicalReduction></transmission></robot>`))
	f.Add([]byte(`<robot><transmission`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ParseTransmissions(strings.NewReader(string(data)))
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is neither ErrInvalid nor ErrUnsupported", err)
			}
			return
		}
		for _, x := range tr {
			if x.Reduction == 0 || x.Joint == "" || x.Name == "" {
				t.Fatalf("accepted %+v", x)
			}
		}
	})
}
