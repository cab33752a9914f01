//! `--latency-ms` and `--latency-dist`: how long each routed message takes on its way, as in
//! Maelstrom (`--latency`, `--latency-dist`). Every distribution has the mean `--latency-ms`:
//!
//! - `constant`: exactly the mean, every time (the default);
//! - `uniform`: uniform between 0 and twice the mean;
//! - `exponential`: exponential with that mean (most messages fast, a long tail), cut at
//!   [`EXPONENTIAL_CAP`] times the mean.
//!
//! Draws come from the router's generator, seeded by the run's seed.

use std::time::Duration;

use rand::Rng;

/// The longest an exponential draw may be, in means (a draw beyond it has odds of e^-20).
pub const EXPONENTIAL_CAP: f64 = 20.0;

/// A latency distribution, by its `--latency-dist` name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dist {
    #[default]
    Constant,
    Uniform,
    Exponential,
}

impl Dist {
    /// Every name `--latency-dist` takes.
    pub const NAMES: [&'static str; 3] = ["constant", "uniform", "exponential"];

    pub fn parse(name: &str) -> Option<Dist> {
        match name {
            "constant" => Some(Dist::Constant),
            "uniform" => Some(Dist::Uniform),
            "exponential" => Some(Dist::Exponential),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dist::Constant => "constant",
            Dist::Uniform => "uniform",
            Dist::Exponential => "exponential",
        }
    }
}

/// The latency of every routed message: a distribution and its mean.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    pub mean_ms: u64,
    pub dist: Dist,
}

impl Latency {
    /// One message's latency.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Duration {
        let mean = self.mean_ms as f64;
        let ms = match self.dist {
            _ if self.mean_ms == 0 => 0.0,
            Dist::Constant => mean,
            Dist::Uniform => rng.gen_range(0.0..=2.0 * mean),
            // Inverse transform: -mean · ln(U), U in (0, 1].
            Dist::Exponential => (-mean * (1.0 - rng.gen::<f64>()).ln()).min(EXPONENTIAL_CAP * mean),
        };
        Duration::from_secs_f64(ms / 1000.0)
    }

    /// Whether every message gets the same latency (no draw needed).
    pub fn is_constant(&self) -> bool {
        self.mean_ms == 0 || self.dist == Dist::Constant
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn draws(dist: Dist, seed: u64, n: usize) -> Vec<f64> {
        let lat = Latency { mean_ms: 100, dist };
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| lat.sample(&mut rng).as_secs_f64() * 1000.0).collect()
    }

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    #[test]
    fn each_distribution_has_its_shape_and_the_seed_decides_the_draws() {
        let n = 20_000;
        let constant = draws(Dist::Constant, 7, n);
        assert!(constant.iter().all(|&d| (d - 100.0).abs() < 1e-6), "constant is always the mean");
        let uniform = draws(Dist::Uniform, 7, n);
        assert!(uniform.iter().all(|&d| (0.0..=200.0).contains(&d)), "uniform stays in [0, 2·mean]");
        assert!((mean(&uniform) - 100.0).abs() < 3.0, "uniform mean {}", mean(&uniform));
        // A quarter of the draws in each quarter of the range.
        let low = uniform.iter().filter(|&&d| d < 50.0).count() as f64 / n as f64;
        assert!((low - 0.25).abs() < 0.02, "uniform: {low} below 50 ms");
        let exp = draws(Dist::Exponential, 7, n);
        assert!(exp.iter().all(|&d| (0.0..=EXPONENTIAL_CAP * 100.0).contains(&d)));
        assert!((mean(&exp) - 100.0).abs() < 4.0, "exponential mean {}", mean(&exp));
        // P(X > mean) = 1/e for an exponential; a uniform would give 1/2.
        let above = exp.iter().filter(|&&d| d > 100.0).count() as f64 / n as f64;
        assert!((above - (-1.0f64).exp()).abs() < 0.02, "exponential: {above} above the mean");
        // Seeded: the same seed draws the same latencies, another seed others.
        assert_eq!(exp, draws(Dist::Exponential, 7, n));
        assert_ne!(exp, draws(Dist::Exponential, 8, n));
        assert_eq!(uniform, draws(Dist::Uniform, 7, n));
        // No latency is no latency, whatever the distribution.
        let none = Latency { mean_ms: 0, dist: Dist::Exponential };
        assert_eq!(none.sample(&mut ChaCha8Rng::seed_from_u64(1)), Duration::ZERO);
        for name in Dist::NAMES {
            assert_eq!(Dist::parse(name).map(Dist::name), Some(name));
        }
        assert_eq!(Dist::parse("normal"), None);
    }
}
