//! `--format` with Go-template syntax (`{{.State.Status}}`, `{{json .Config}}`,
//! `table {{.ID}}\t{{.Names}}`), as docker's CLI reads it, rendered with the
//! `gtmpl` crate over a JSON value.

use gtmpl::{Context, Func, FuncError, Template, Value};

use crate::error::CliError;

/// A parsed `--format` template. `table` in front asks for a header line.
pub struct Format {
    template: Template,
    header: Option<String>,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Format")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl Format {
    /// Parses `text` (docker's escapes `\t` and `\n` are honoured).
    pub fn parse(text: &str, header_names: &[(&str, &str)]) -> Result<Self, CliError> {
        let text = text.replace("\\t", "\t").replace("\\n", "\n");
        let (body, table) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (rest.trim_start().to_owned(), true)
            }
            _ => (text, false),
        };
        let mut template = Template::default();
        template.add_funcs(&FUNCS);
        template
            .parse(body.clone())
            .map_err(|e| CliError::engine(format!("invalid --format template: {e}")))?;
        let header = table.then(|| header_line(&body, header_names));
        Ok(Format { template, header })
    }

    /// The header line for `table` formats.
    pub fn header(&self) -> Option<&str> {
        self.header.as_deref()
    }

    /// Renders one value (followed by a newline, as docker prints it).
    pub fn render(&self, value: &serde_json::Value) -> Result<String, CliError> {
        let out = self
            .template
            .render(&Context::from(to_value(value)))
            .map_err(|e| CliError::engine(format!("--format: {e}")))?;
        Ok(format!("{out}\n"))
    }
}

/// The template with every `{{.Field}}` replaced by its column title.
fn header_line(body: &str, names: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let action = rest[start + 2..start + len].trim();
        let field = action.trim_start_matches('.');
        let title = names
            .iter()
            .find(|(f, _)| *f == field)
            .map_or_else(|| field.to_ascii_uppercase(), |(_, t)| (*t).to_owned());
        out.push_str(&title);
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

const FUNCS: [(&str, Func); 5] = [
    ("json", json as Func),
    ("join", join as Func),
    ("upper", upper as Func),
    ("lower", lower as Func),
    ("truncate", truncate as Func),
];

/// `{{json .X}}`: X as compact JSON.
fn json(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("json".into(), 1));
    };
    let text =
        serde_json::to_string(&from_value(v)).map_err(|e| FuncError::Generic(e.to_string()))?;
    Ok(Value::String(text))
}

/// `{{join .X ","}}`: the strings of a list joined.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    let [Value::Array(items), Value::String(sep)] = args else {
        return Err(FuncError::Generic(
            "join needs a list and a separator".into(),
        ));
    };
    let parts: Vec<String> = items.iter().map(ToString::to_string).collect();
    Ok(Value::String(parts.join(sep)))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("upper".into(), 1));
    };
    Ok(Value::String(v.to_string().to_uppercase()))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    let [v] = args else {
        return Err(FuncError::ExactlyXArgs("lower".into(), 1));
    };
    Ok(Value::String(v.to_string().to_lowercase()))
}

/// `{{truncate .X 12}}`: at most N characters.
fn truncate(args: &[Value]) -> Result<Value, FuncError> {
    let [v, Value::Number(n)] = args else {
        return Err(FuncError::Generic(
            "truncate needs a value and a length".into(),
        ));
    };
    let n = n.as_u64().unwrap_or(0) as usize;
    Ok(Value::String(v.to_string().chars().take(n).collect()))
}

/// serde_json to the template engine's values.
fn to_value(v: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Value::from(i),
            (None, Some(u), _) => Value::from(u),
            (None, None, Some(f)) => Value::from(f),
            _ => Value::Nil,
        },
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(to_value).collect()),
        J::Object(map) => Value::Map(map.iter().map(|(k, v)| (k.clone(), to_value(v))).collect()),
    }
}

/// The template engine's values back to JSON (for `json`).
fn from_value(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil | Value::NoValue | Value::Function(_) => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::String(s) => J::String(s.clone()),
        Value::Number(n) => n
            .as_i64()
            .map(J::from)
            .or_else(|| n.as_u64().map(J::from))
            .or_else(|| n.as_f64().map(J::from))
            .unwrap_or(J::Null),
        Value::Array(items) => J::Array(items.iter().map(from_value).collect()),
        Value::Object(map) | Value::Map(map) => {
            let sorted: std::collections::BTreeMap<_, _> = map
                .iter()
                .map(|(k, v)| (k.clone(), from_value(v)))
                .collect();
            J::Object(sorted.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn docker_style_templates() {
        let v = json!({"State": {"Status": "running", "Pid": 42}, "Config": {"Env": ["A=1"]},
                       "NetworkSettings": {"IPAddress": ""}, "Name": "/web"});
        let f = Format::parse("{{.State.Status}} {{.State.Pid}}", &[]).unwrap();
        assert_eq!(f.render(&v).unwrap(), "running 42\n");
        let f = Format::parse("{{json .Config}}", &[]).unwrap();
        assert_eq!(f.render(&v).unwrap(), "{\"Env\":[\"A=1\"]}\n");
        let f = Format::parse(
            "[{{.NetworkSettings.IPAddress}}]{{join .Config.Env \",\"}}",
            &[],
        )
        .unwrap();
        assert_eq!(f.render(&v).unwrap(), "[]A=1\n");
        let f = Format::parse("table {{.ID}}\\t{{.Names}}", &[("ID", "CONTAINER ID")]).unwrap();
        assert_eq!(f.header(), Some("CONTAINER ID\tNAMES"));
        assert!(Format::parse("{{.State", &[]).is_err());
    }
}
