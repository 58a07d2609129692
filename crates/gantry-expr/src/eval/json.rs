//! `toJSON` and `fromJSON`.
//!
//! `toJSON` prints like JavaScript's `JSON.stringify(value, null, 2)`: two-space indentation,
//! `"key": value`, `[]` and `{}` for empty containers, numbers printed by JavaScript's rules
//! (NaN and the infinities as `null`), and only `"`, `\` and control characters escaped.
//! `fromJSON` parses standard JSON; its objects drop keys that repeat an earlier key in another
//! case, because lookups could never reach them.

use std::borrow::Cow;
use std::rc::Rc;

use indexmap::IndexMap;
use indexmap::map::Entry;

use super::data::{Data, List, Map};
use super::memory::{OutOfMemory, StringBudget};
use crate::number::{is_js_whitespace, js_number_to_string};
use crate::text::fold_key;

/// Pretty-prints `data`, failing when the text would outgrow `max_memory`.
pub(crate) fn to_json_text(data: &Data<'_>, max_memory: usize) -> Result<String, OutOfMemory> {
    let mut writer = Writer {
        out: String::new(),
        budget: StringBudget::new(max_memory),
    };
    writer.value(data, 0)?;
    Ok(writer.out)
}

struct Writer {
    out: String,
    budget: StringBudget,
}

impl Writer {
    fn push(&mut self, text: &str) -> Result<(), OutOfMemory> {
        self.budget.add(text)?;
        self.out.push_str(text);
        Ok(())
    }

    fn newline(&mut self, depth: usize) -> Result<(), OutOfMemory> {
        self.push("\n")?;
        for _ in 0..depth {
            self.push("  ")?;
        }
        Ok(())
    }

    fn value(&mut self, data: &Data<'_>, depth: usize) -> Result<(), OutOfMemory> {
        match data {
            Data::Null => self.push("null"),
            Data::Boolean(b) => self.push(if *b { "true" } else { "false" }),
            Data::Number(n) if n.is_finite() => self.push(&js_number_to_string(*n)),
            Data::Number(_) => self.push("null"),
            Data::String(text) => self.string(text.as_str()),
            Data::Array(list) => self.array(list, depth),
            Data::Object(map) => self.object(map, depth),
        }
    }

    fn array(&mut self, list: &List<'_>, depth: usize) -> Result<(), OutOfMemory> {
        if list.len() == 0 {
            return self.push("[]");
        }
        self.push("[")?;
        for (index, item) in list.items().enumerate() {
            if index > 0 {
                self.push(",")?;
            }
            self.newline(depth + 1)?;
            self.value(&item, depth + 1)?;
        }
        self.newline(depth)?;
        self.push("]")
    }

    fn object(&mut self, map: &Map<'_>, depth: usize) -> Result<(), OutOfMemory> {
        if map.len() == 0 {
            return self.push("{}");
        }
        self.push("{")?;
        for index in 0..map.len() {
            let Some((key, value)) = map.entry(index) else {
                continue;
            };
            if index > 0 {
                self.push(",")?;
            }
            self.newline(depth + 1)?;
            self.string(key)?;
            self.push(": ")?;
            self.value(&value, depth + 1)?;
        }
        self.newline(depth)?;
        self.push("}")
    }

    fn string(&mut self, text: &str) -> Result<(), OutOfMemory> {
        self.push("\"")?;
        let mut plain_start = 0;
        for (offset, c) in text.char_indices() {
            let escape = match c {
                '"' => Some(Cow::Borrowed("\\\"")),
                '\\' => Some(Cow::Borrowed("\\\\")),
                '\u{08}' => Some(Cow::Borrowed("\\b")),
                '\u{0C}' => Some(Cow::Borrowed("\\f")),
                '\n' => Some(Cow::Borrowed("\\n")),
                '\r' => Some(Cow::Borrowed("\\r")),
                '\t' => Some(Cow::Borrowed("\\t")),
                c if c < ' ' => Some(Cow::Owned(format!("\\u{:04x}", u32::from(c)))),
                _ => None,
            };
            if let Some(escape) = escape {
                self.push(&text[plain_start..offset])?;
                self.push(&escape)?;
                plain_start = offset + c.len_utf8();
            }
        }
        self.push(&text[plain_start..])?;
        self.push("\"")
    }
}

/// Why `fromJSON` failed.
pub(crate) enum FromJsonError {
    Empty,
    Invalid(String),
}

pub(crate) fn parse_json<'a>(text: &str) -> Result<Data<'a>, FromJsonError> {
    if text.trim_matches(is_js_whitespace).is_empty() {
        return Err(FromJsonError::Empty);
    }
    // serde_json caps nesting at 128 levels, which also keeps the conversion below shallow.
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|error| FromJsonError::Invalid(error.to_string()))?;
    Ok(from_json(json))
}

fn from_json<'a>(json: serde_json::Value) -> Data<'a> {
    match json {
        serde_json::Value::Null => Data::Null,
        serde_json::Value::Bool(b) => Data::Boolean(b),
        serde_json::Value::Number(n) => Data::Number(n.as_f64().unwrap_or(f64::NAN)),
        serde_json::Value::String(s) => Data::string(s),
        serde_json::Value::Array(items) => Data::Array(List::Built(Rc::new(
            items.into_iter().map(from_json).collect(),
        ))),
        serde_json::Value::Object(object) => {
            let mut map = IndexMap::with_capacity(object.len());
            for (key, value) in object {
                if let Entry::Vacant(slot) = map.entry(fold_key(&key).into_owned()) {
                    slot.insert((key, from_json(value)));
                }
            }
            Data::Object(Map::Built(Rc::new(map)))
        }
    }
}
