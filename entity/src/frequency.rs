//! How often a target is probed. Only the six frequencies of the original design exist; every
//! other value is refused with an error that names the allowed ones.

use std::fmt;
use std::str::FromStr;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// A probe frequency, in minutes. Stored as `int` in `urltargets.monitor_frequency`, carried as
/// a plain number (`1`, `2`, …) in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "i32", db_type = "Integer")]
pub enum Frequency {
    #[sea_orm(num_value = 1)]
    OneMinute,
    #[sea_orm(num_value = 2)]
    TwoMinutes,
    #[sea_orm(num_value = 5)]
    FiveMinutes,
    #[sea_orm(num_value = 10)]
    TenMinutes,
    #[sea_orm(num_value = 20)]
    TwentyMinutes,
    #[sea_orm(num_value = 30)]
    ThirtyMinutes,
}

/// A value that is not one of the six frequencies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frequency must be one of 1, 2, 5, 10, 20 or 30 minutes, got {0}")]
pub struct FrequencyError(pub String);

impl Frequency {
    /// Every frequency, shortest first.
    pub const ALL: [Frequency; 6] = [
        Frequency::OneMinute,
        Frequency::TwoMinutes,
        Frequency::FiveMinutes,
        Frequency::TenMinutes,
        Frequency::TwentyMinutes,
        Frequency::ThirtyMinutes,
    ];

    /// The period in minutes.
    pub const fn minutes(self) -> i32 {
        match self {
            Frequency::OneMinute => 1,
            Frequency::TwoMinutes => 2,
            Frequency::FiveMinutes => 5,
            Frequency::TenMinutes => 10,
            Frequency::TwentyMinutes => 20,
            Frequency::ThirtyMinutes => 30,
        }
    }

    /// The frequency of a period in minutes, if it is one of the six.
    pub fn from_minutes(minutes: i64) -> Result<Self, FrequencyError> {
        Self::ALL
            .into_iter()
            .find(|f| i64::from(f.minutes()) == minutes)
            .ok_or_else(|| FrequencyError(minutes.to_string()))
    }

    /// The name of the original design's view of results at this frequency (`view_1m`, …).
    pub const fn view_name(self) -> &'static str {
        match self {
            Frequency::OneMinute => "view_1m",
            Frequency::TwoMinutes => "view_2m",
            Frequency::FiveMinutes => "view_5m",
            Frequency::TenMinutes => "view_10m",
            Frequency::TwentyMinutes => "view_20m",
            Frequency::ThirtyMinutes => "view_30m",
        }
    }
}

impl TryFrom<i32> for Frequency {
    type Error = FrequencyError;

    fn try_from(minutes: i32) -> Result<Self, Self::Error> {
        Self::from_minutes(i64::from(minutes))
    }
}

impl From<Frequency> for i32 {
    fn from(f: Frequency) -> Self {
        f.minutes()
    }
}

impl FromStr for Frequency {
    type Err = FrequencyError;

    /// Accepts `5` and `5m`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        let digits = trimmed.strip_suffix('m').unwrap_or(trimmed);
        digits
            .parse::<i64>()
            .map_err(|_| FrequencyError(format!("{s:?}")))
            .and_then(Self::from_minutes)
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}m", self.minutes())
    }
}

impl Serialize for Frequency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i32(self.minutes())
    }
}

impl<'de> Deserialize<'de> for Frequency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let minutes = i64::deserialize(deserializer)?;
        Self::from_minutes(minutes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequency_accepts_exactly_the_six_values() {
        let accepted: Vec<i64> = (-1..=61)
            .filter(|m| Frequency::from_minutes(*m).is_ok())
            .collect();
        assert_eq!(accepted, vec![1, 2, 5, 10, 20, 30]);
    }

    #[test]
    fn frequency_error_names_the_allowed_values() {
        let err = "3".parse::<Frequency>().unwrap_err().to_string();
        assert!(err.contains("1, 2, 5, 10, 20 or 30"), "{err}");
        assert!(err.contains('3'), "{err}");
        let err = Frequency::try_from(0).unwrap_err().to_string();
        assert!(err.contains("got 0"), "{err}");
    }

    #[test]
    fn frequency_parses_with_and_without_unit() {
        assert_eq!("10".parse::<Frequency>(), Ok(Frequency::TenMinutes));
        assert_eq!("30m".parse::<Frequency>(), Ok(Frequency::ThirtyMinutes));
        assert!("ten".parse::<Frequency>().is_err());
    }

    #[test]
    fn frequency_is_a_number_in_json() {
        assert_eq!(serde_json::to_string(&Frequency::FiveMinutes).unwrap(), "5");
        assert_eq!(
            serde_json::from_str::<Frequency>("20").unwrap(),
            Frequency::TwentyMinutes
        );
        let err = serde_json::from_str::<Frequency>("7")
            .unwrap_err()
            .to_string();
        assert!(err.contains("1, 2, 5, 10, 20 or 30"), "{err}");
    }

    #[test]
    fn view_names_match_the_original_design() {
        let names: Vec<&str> = Frequency::ALL.iter().map(|f| f.view_name()).collect();
        assert_eq!(
            names,
            [
                "view_1m", "view_2m", "view_5m", "view_10m", "view_20m", "view_30m"
            ]
        );
    }
}
