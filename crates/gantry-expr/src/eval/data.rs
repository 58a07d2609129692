//! The values the evaluator passes around while it runs.
//!
//! Unlike [`Value`], these borrow from the contexts instead of copying them, so reading
//! `github.event.pull_request.title` costs no copy of the event, and they have identity: GitHub
//! compares arrays and objects by reference, so `github == github` is true while
//! `fromJSON('{}') == fromJSON('{}')` is false. Arrays made by `*` are marked as filtered,
//! because further steps apply to each of their items.

use std::borrow::Cow;
use std::rc::Rc;

use indexmap::IndexMap;

use crate::number::{coerce_number_to_string, parse_js_number};
use crate::text::fold_key;
use crate::value::{Value, lookup_key};

#[derive(Debug, Clone)]
pub(crate) enum Data<'a> {
    Null,
    Boolean(bool),
    Number(f64),
    String(Text<'a>),
    Array(List<'a>),
    Object(Map<'a>),
}

/// A string borrowed from the expression or the contexts, or made during evaluation.
#[derive(Debug, Clone)]
pub(crate) enum Text<'a> {
    Borrowed(&'a str),
    Shared(Rc<str>),
}

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(text) => text,
            Text::Shared(text) => text,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum List<'a> {
    /// An array inside the contexts.
    Context(&'a Vec<Value>),
    /// An array made during evaluation (by `fromJSON`).
    Built(Rc<Vec<Data<'a>>>),
    /// The result of a `*` step.
    Filtered(Rc<Vec<Data<'a>>>),
}

#[derive(Debug, Clone)]
pub(crate) enum Map<'a> {
    /// An object inside the contexts.
    Context(&'a IndexMap<String, Value>),
    /// An object made during evaluation, keyed by folded key.
    Built(Rc<IndexMap<String, (String, Data<'a>)>>),
}

impl<'a> Data<'a> {
    pub(crate) fn from_value(value: &'a Value) -> Data<'a> {
        match value {
            Value::Null => Data::Null,
            Value::Boolean(b) => Data::Boolean(*b),
            Value::Number(n) => Data::Number(*n),
            Value::String(s) => Data::String(Text::Borrowed(s)),
            Value::Array(items) => Data::Array(List::Context(items)),
            Value::Object(map) => Data::Object(Map::Context(map)),
        }
    }

    pub(crate) fn string(text: impl Into<Rc<str>>) -> Data<'a> {
        Data::String(Text::Shared(text.into()))
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Data::Null => "Null",
            Data::Boolean(_) => "Boolean",
            Data::Number(_) => "Number",
            Data::String(_) => "String",
            Data::Array(_) => "Array",
            Data::Object(_) => "Object",
        }
    }

    pub(crate) fn is_primitive(&self) -> bool {
        !matches!(self, Data::Array(_) | Data::Object(_))
    }

    pub(crate) fn is_truthy(&self) -> bool {
        match self {
            Data::Null => false,
            Data::Boolean(b) => *b,
            Data::Number(n) => !(*n == 0.0 || n.is_nan()),
            Data::String(text) => !text.as_str().is_empty(),
            Data::Array(_) | Data::Object(_) => true,
        }
    }

    /// The number the value converts to: null is 0, booleans 0 or 1, strings by JavaScript's
    /// `Number()`, arrays and objects NaN.
    pub(crate) fn to_number(&self) -> f64 {
        match self {
            Data::Null => 0.0,
            Data::Boolean(b) => f64::from(u8::from(*b)),
            Data::Number(n) => *n,
            Data::String(text) => parse_js_number(text.as_str()),
            Data::Array(_) | Data::Object(_) => f64::NAN,
        }
    }

    /// The string the value converts to; see [`Value::to_coerced_string`].
    pub(crate) fn coerce_string(&self) -> Cow<'_, str> {
        match self {
            Data::Null => Cow::Borrowed(""),
            Data::Boolean(true) => Cow::Borrowed("true"),
            Data::Boolean(false) => Cow::Borrowed("false"),
            Data::Number(n) => Cow::Owned(coerce_number_to_string(*n)),
            Data::String(text) => Cow::Borrowed(text.as_str()),
            Data::Array(_) => Cow::Borrowed("Array"),
            Data::Object(_) => Cow::Borrowed("Object"),
        }
    }

    pub(crate) fn to_value(&self) -> Value {
        match self {
            Data::Null => Value::Null,
            Data::Boolean(b) => Value::Boolean(*b),
            Data::Number(n) => Value::Number(*n),
            Data::String(text) => Value::String(text.as_str().to_owned()),
            Data::Array(list) => Value::Array(
                (0..list.len())
                    .filter_map(|i| list.get(i))
                    .map(|item| item.to_value())
                    .collect(),
            ),
            Data::Object(map) => Value::Object(
                (0..map.len())
                    .filter_map(|i| map.entry(i))
                    .map(|(key, value)| (key.to_owned(), value.to_value()))
                    .collect(),
            ),
        }
    }
}

impl<'a> List<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            List::Context(items) => items.len(),
            List::Built(items) | List::Filtered(items) => items.len(),
        }
    }

    pub(crate) fn get(&self, index: usize) -> Option<Data<'a>> {
        match self {
            List::Context(items) => items.get(index).map(Data::from_value),
            List::Built(items) | List::Filtered(items) => items.get(index).cloned(),
        }
    }

    pub(crate) fn items(&self) -> impl Iterator<Item = Data<'a>> + '_ {
        (0..self.len()).filter_map(|index| self.get(index))
    }

    /// Reference identity, which is how GitHub compares arrays.
    pub(crate) fn is_same(&self, other: &List<'a>) -> bool {
        match (self, other) {
            (List::Context(left), List::Context(right)) => std::ptr::eq(*left, *right),
            (List::Built(left), List::Built(right))
            | (List::Filtered(left), List::Filtered(right)) => Rc::ptr_eq(left, right),
            _ => false,
        }
    }
}

impl<'a> Map<'a> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Map::Context(map) => map.len(),
            Map::Built(map) => map.len(),
        }
    }

    /// The key (as written) and value at `index` in insertion order.
    pub(crate) fn entry(&self, index: usize) -> Option<(&str, Data<'a>)> {
        match self {
            Map::Context(map) => map
                .get_index(index)
                .map(|(key, value)| (key.as_str(), Data::from_value(value))),
            Map::Built(map) => map
                .get_index(index)
                .map(|(_, (key, value))| (key.as_str(), value.clone())),
        }
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = Data<'a>> + '_ {
        (0..self.len()).filter_map(|index| self.entry(index).map(|(_, value)| value))
    }

    /// The value of the first key matching `name` case-insensitively.
    pub(crate) fn get(&self, name: &str) -> Option<Data<'a>> {
        match self {
            Map::Context(map) => lookup_key(map, name).map(Data::from_value),
            Map::Built(map) => map
                .get(fold_key(name).as_ref())
                .map(|(_, value)| value.clone()),
        }
    }

    /// Reference identity, which is how GitHub compares objects.
    pub(crate) fn is_same(&self, other: &Map<'a>) -> bool {
        match (self, other) {
            (Map::Context(left), Map::Context(right)) => std::ptr::eq(*left, *right),
            (Map::Built(left), Map::Built(right)) => Rc::ptr_eq(left, right),
            _ => false,
        }
    }
}
