//! Deterministic pseudo-random numbers for seeded weights.
//!
//! A splitmix64 stream per tensor (the model seed mixed with the tensor's name, so one
//! tensor's values do not depend on how many values other layers drew), uniforms from the top
//! 53 bits, and normals by Marsaglia's polar method.
//!
//! Platform independence: everything here and in the weight initialisation uses only IEEE-754
//! basic operations (`+ - * /`, `sqrt`, comparisons, conversions), which are correctly rounded
//! on every platform. The logarithm and exponential the polar method and the statistics need
//! are implemented below from those operations, because the platform's `ln`/`exp` (libm)
//! are not guaranteed to round identically everywhere.

/// A splitmix64 generator.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
    spare: Option<f64>,
}

/// The splitmix64 finaliser (a good 64-bit mixer).
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over the bytes of a string.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng {
            state: mix(seed ^ 0x5DEE_CE66_D1CE_4E5B),
            spare: None,
        }
    }

    /// The stream of one named tensor of a model built with `seed`.
    pub fn for_name(seed: u64, name: &str) -> Rng {
        Rng::new(mix(seed).wrapping_add(mix(fnv1a(name))))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f64 {
        2.0 * self.uniform() - 1.0
    }

    /// Standard normal (Marsaglia's polar method).
    pub fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        loop {
            let u = self.symmetric();
            let v = self.symmetric();
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * ln(s) / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

const LN_2: f64 = std::f64::consts::LN_2;

/// Natural logarithm from basic operations (relative error ~1e-16). `ln(x)` for `x <= 0` is
/// `-inf` / NaN like `f64::ln`.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    // Scale subnormals into the normal range.
    let (x, bias) = if x < f64::MIN_POSITIVE {
        (x * (1u64 << 54) as f64, -54i64)
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023 + bias;
    let mut m = f64::from_bits((bits & 0x000F_FFFF_FFFF_FFFF) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln(m) = 2 atanh(t), t = (m-1)/(m+1), |t| <= 0.172.
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let mut term = t;
    let mut sum = 0.0;
    // t^23 / 23 < 1e-19: eleven terms reach full precision.
    for k in 0..11 {
        sum += term / (2 * k + 1) as f64;
        term *= t2;
    }
    2.0 * sum + e as f64 * LN_2
}

/// Exponential from basic operations (relative error ~1e-15).
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -745.0 {
        return 0.0;
    }
    // x = k ln2 + r with |r| <= ln2/2; ln2 split into a head exact in k*ln2_hi and a tail.
    const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);
    let k = (x / LN_2).round();
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut term = 1.0;
    let mut sum = 1.0;
    // |r|^14 / 14! < 1e-17.
    for i in 1..15 {
        term *= r / i as f64;
        sum += term;
    }
    // Multiply by 2^k in two steps so that neither factor over- or underflows.
    let k = k as i64;
    let k1 = k / 2;
    let k2 = k - k1;
    sum * pow2(k1) * pow2(k2)
}

/// `2^k` for `-1022 <= k <= 1023`.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_exp_are_accurate() {
        for &x in &[
            1e-300, 1e-10, 0.1, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0, 12345.678, 1e300,
        ] {
            let (a, b) = (ln(x), x.ln());
            assert!(
                (a - b).abs() <= 1e-15 * b.abs().max(1.0),
                "ln({x}) = {a}, libm {b}"
            );
        }
        for &x in &[-700.0, -20.0, -1.0, -1e-3, 0.0, 0.3, 1.0, 5.5, 50.0, 700.0] {
            let (a, b) = (exp(x), x.exp());
            assert!((a - b).abs() <= 1e-14 * b, "exp({x}) = {a}, libm {b}");
        }
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert!(ln(-1.0).is_nan());
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert_eq!(exp(-1000.0), 0.0);
    }

    #[test]
    fn normals_have_unit_moments() {
        let mut r = Rng::new(7);
        let n = 200_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for _ in 0..n {
            let z = r.normal();
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn streams_are_deterministic_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_name(1, "w").next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::for_name(1, "w").next_u64(),
            Rng::for_name(2, "w").next_u64()
        );
        assert_ne!(
            Rng::for_name(1, "w").next_u64(),
            Rng::for_name(1, "v").next_u64()
        );
    }
}
