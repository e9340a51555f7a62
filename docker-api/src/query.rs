//! Query strings: docker's booleans (`1`, `true`, `True`), integers, and the
//! JSON `filters` parameter (`{"name": ["x"]}` or the old `{"name": {"x": true}}`).
use crate::error::{ApiError, Result};
use quilt_sync_engine::echo;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query {
            pairs: q
                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                .unwrap_or_default(),
        }
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated parameter, in order.
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Absent: `default`; docker's parser takes "", "0", "false" (any case)
    /// as false and anything else as true.
    pub fn flag(&self, k: &str, default: bool) -> bool {
        match self.get(k) {
            None => default,
            Some(v) => !(v.is_empty() || v == "0" || v.eq_ignore_ascii_case("false")),
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad(format!("invalid {k} {}: an integer is expected", echo(v)))
            }),
        }
    }

    /// The `filters` parameter as name -> values.
    pub fn filters(&self) -> Result<BTreeMap<String, Vec<String>>> {
        let Some(raw) = self.get("filters").filter(|s| !s.is_empty()) else {
            return Ok(BTreeMap::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad(format!("invalid filters {}: {e}", echo(raw))))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad("filters must be a JSON object"))?;
        let mut out = BTreeMap::new();
        for (k, v) in obj {
            let vals: Vec<String> = match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| {
                        ApiError::bad(format!("filter {}: values must be strings", echo(k)))
                    })?,
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool() == Some(true))
                    .map(|(x, _)| x.clone())
                    .collect(),
                _ => {
                    return Err(ApiError::bad(format!(
                        "filter {k}: a list of values is expected"
                    )));
                }
            };
            out.insert(k.clone(), vals);
        }
        Ok(out)
    }
}

/// Refuses filters other than `known` (`what` names the listing).
pub fn only(filters: &BTreeMap<String, Vec<String>>, known: &[&str], what: &str) -> Result<()> {
    match filters.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad(format!(
            "the {what} filter {} is not supported (supported: {})",
            echo(k),
            known.join(", ")
        ))),
        None => Ok(()),
    }
}
