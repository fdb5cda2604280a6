//! The value types of a policy file: every number a user writes has a documented range that is
//! checked while the file is read, so the reader (toml or serde_json) reports the position of a
//! bad value, and nothing inside the engine can overflow on it.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The longest duration a policy accepts: one day. Longer timeouts, windows or intervals are
/// mistakes, and a bound keeps every sum of them far from overflowing.
pub const MAX_PERIOD: Duration = Duration::from_secs(24 * 60 * 60);

/// A positive duration of at most [`MAX_PERIOD`], written as text (`"250ms"`, `"1m 30s"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period(Duration);

impl Period {
    /// `d` if it is in range.
    pub fn new(d: Duration) -> Result<Period, String> {
        if d.is_zero() {
            return Err("must be positive".to_owned());
        }
        if d > MAX_PERIOD {
            return Err(format!("{} is longer than the most a policy accepts (24h)", humantime::format_duration(d)));
        }
        Ok(Period(d))
    }

    /// A constant known to be in range.
    pub const fn from_millis(ms: u64) -> Period {
        assert!(ms > 0 && ms <= 86_400_000);
        Period(Duration::from_millis(ms))
    }

    /// A constant known to be in range.
    pub const fn from_secs(s: u64) -> Period {
        assert!(s > 0 && s <= 86_400);
        Period(Duration::from_secs(s))
    }

    /// The duration.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl std::str::FromStr for Period {
    type Err = String;

    fn from_str(text: &str) -> Result<Period, String> {
        let d = humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration ({e})"))?;
        Period::new(d)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Period {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Period, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Period;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"250ms\" or \"5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Period, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A whole number in `LO..=HI`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Count<const LO: u32, const HI: u32>(u32);

impl<const LO: u32, const HI: u32> Count<LO, HI> {
    /// `n` if it is in range.
    pub fn new(n: u32) -> Result<Self, String> {
        if (LO..=HI).contains(&n) { Ok(Count(n)) } else { Err(format!("{n} is not in {LO}..={HI}")) }
    }

    /// A constant known to be in range.
    pub const fn of(n: u32) -> Self {
        assert!(n >= LO && n <= HI);
        Count(n)
    }

    /// The number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de, const LO: u32, const HI: u32> Deserialize<'de> for Count<LO, HI> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u32::try_from(n)
            .map_err(|_| format!("{n} is not in {LO}..={HI}"))
            .and_then(Count::new)
            .map_err(de::Error::custom)
    }
}

/// A real number in `[0, MAX]`, `MAX` in hundredths (`Fraction<100>` is `[0, 1]`).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Fraction<const MAX_HUNDREDTHS: u32>(f64);

/// A fraction in `[0, 1]`.
pub type Ratio = Fraction<100>;

impl<const M: u32> Fraction<M> {
    /// The largest value.
    pub const MAX: f64 = M as f64 / 100.0;

    /// `x` if it is in range.
    pub fn new(x: f64) -> Result<Self, String> {
        if x.is_finite() && (0.0..=Self::MAX).contains(&x) {
            Ok(Fraction(x))
        } else {
            Err(format!("{x} is not in [0, {}]", Self::MAX))
        }
    }

    /// A constant known to be in range.
    pub const fn of(x: f64) -> Self {
        assert!(x >= 0.0 && x <= M as f64 / 100.0);
        Fraction(x)
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }

    /// `None` for zero (the documented "off"), else the value.
    pub fn nonzero(self) -> Option<f64> {
        (self.0 > 0.0).then_some(self.0)
    }
}

impl<'de, const M: u32> Deserialize<'de> for Fraction<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Fraction::new(f64::deserialize(d)?).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_round_trip_through_their_text() {
        for text in ["1ns", "250ms", "1m 30s", "24h"] {
            let p: Period = text.parse().unwrap();
            assert_eq!(p.to_string().parse::<Period>().unwrap(), p);
        }
        assert!("0s".parse::<Period>().is_err());
        assert!("25h".parse::<Period>().is_err());
        assert!("99999999999h".parse::<Period>().is_err());
    }

    #[test]
    fn counts_and_fractions_reject_values_out_of_range() {
        assert!(Count::<1, 10>::new(0).is_err());
        assert_eq!(Count::<1, 10>::new(10).unwrap().get(), 10);
        assert!(serde_json::from_str::<Count<1, 10>>("-1").is_err());
        assert!(serde_json::from_str::<Count<1, 10>>("4294967296").is_err());
        assert!(Ratio::new(1.01).is_err());
        assert!(Ratio::new(f64::NAN).is_err());
        assert_eq!(Fraction::<1000>::new(10.0).unwrap().get(), 10.0);
    }
}
