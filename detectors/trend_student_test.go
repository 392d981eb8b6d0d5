package detectors

import (
	"math"
	"testing"
)

// studentCDF against closed forms (ν = 1, 2), table quantiles and, for a fractional ν, a
// numerical integral of the density.
func TestStudentCDF(t *testing.T) {
	closed := []struct {
		nu float64
		f  func(float64) float64
	}{
		{1, func(t float64) float64 { return 0.5 + math.Atan(t)/math.Pi }},
		{2, func(t float64) float64 { return 0.5 + t/(2*math.Sqrt(2+t*t)) }},
	}
	for _, c := range closed {
		for _, x := range []float64{-30, -4, -1.5, -0.3, 0, 0.2, 1, 2.5, 7, 100} {
			if got, want := studentCDF(x, c.nu), c.f(x); math.Abs(got-want) > 1e-10 {
				t.Errorf("ν=%g t=%g: %.12f, want %.12f", c.nu, x, got, want)
			}
		}
	}
	// Quantiles from statistical tables (upper tail probability p at t).
	table := []struct{ nu, t, p float64 }{
		{3, 5.840909, 0.005}, {5, 2.570582, 0.025}, {10, 1.812461, 0.05},
		{30, 1.310415, 0.1}, {120, 2.357825, 0.01}, {1, 6.313752, 0.05},
	}
	for _, c := range table {
		if got := 1 - studentCDF(c.t, c.nu); math.Abs(got-c.p) > 2e-7 {
			t.Errorf("ν=%g: P(T > %g) = %.8f, want %g", c.nu, c.t, got, c.p)
		}
		if got := studentCDF(-c.t, c.nu); math.Abs(got-c.p) > 2e-7 {
			t.Errorf("ν=%g: P(T < −%g) = %.8f, want %g", c.nu, c.t, got, c.p)
		}
	}
	// Fractional ν: Simpson's rule over the density, substituting t = tan θ.
	for _, nu := range []float64{1.3, 2.5, 7.3} {
		lg1, _ := math.Lgamma((nu + 1) / 2)
		lg2, _ := math.Lgamma(nu / 2)
		c := math.Exp(lg1-lg2) / math.Sqrt(nu*math.Pi)
		dens := func(th float64) float64 { // density in θ
			x := math.Tan(th)
			return c * math.Pow(1+x*x/nu, -(nu+1)/2) * (1 + x*x)
		}
		for _, x := range []float64{-3, -0.5, 0.8, 2, 9} {
			lo, hi := -math.Pi/2, math.Atan(x)
			const n = 20000
			h := (hi - lo) / n
			sum := dens(lo+1e-12) + dens(hi)
			for i := 1; i < n; i++ {
				w := 2.0
				if i%2 == 1 {
					w = 4
				}
				sum += w * dens(lo+float64(i)*h)
			}
			if got, want := studentCDF(x, nu), sum*h/3; math.Abs(got-want) > 1e-6 {
				t.Errorf("ν=%g t=%g: %.9f, numerical %.9f", nu, x, got, want)
			}
		}
	}
	// The normal limit, and the edges.
	if got, want := studentCDF(1.7, math.Inf(1)), normCDF(1.7); got != want {
		t.Errorf("ν=∞: %v, want Φ = %v", got, want)
	}
	if got := studentCDF(1.7, 1e6); math.Abs(got-normCDF(1.7)) > 1e-6 {
		t.Errorf("ν=1e6: %v, want ≈ Φ = %v", got, normCDF(1.7))
	}
	if studentCDF(math.Inf(1), 3) != 1 || studentCDF(math.Inf(-1), 3) != 0 || !math.IsNaN(studentCDF(math.NaN(), 3)) {
		t.Error("studentCDF(±Inf/NaN) wrong")
	}
}

func BenchmarkStudentCDF(b *testing.B) {
	b.ReportAllocs()
	s := 0.0
	for i := 0; i < b.N; i++ {
		s += studentCDF(1.5+float64(i%7)*0.3, 2+float64(i%50))
	}
	_ = s
}
