//! Property, index and `*` steps, including GitHub's "filtered arrays".
//!
//! An index value works as a key (its string form) on objects and as a position (its number
//! form, floored, when finite and not negative) on arrays, so `a['1']`, `a[1.7]` and `a[true]`
//! all read the second item. `*` turns an array or an object's values into a filtered array;
//! a step applied to a filtered array applies to each item and keeps what it finds, flattening
//! one level (`a.*.b`, `a[*][0]`). Reading something that is not there is null, never an error.

use std::rc::Rc;

use super::data::{Data, List};

/// A step, with its index value already evaluated.
pub(crate) enum Index {
    Star,
    Key {
        /// The key used on objects; only primitives have one.
        name: Option<String>,
        /// The position used on arrays.
        position: Option<usize>,
    },
}

impl Index {
    pub(crate) fn from_data(index: &Data<'_>) -> Index {
        let name = index
            .is_primitive()
            .then(|| index.coerce_string().into_owned());
        let number = index.to_number();
        let position = (number.is_finite() && number >= 0.0).then(|| number.floor() as usize);
        Index::Key { name, position }
    }
}

pub(crate) fn apply<'a>(target: &Data<'a>, index: &Index) -> Data<'a> {
    match (target, index) {
        (Data::Array(List::Filtered(items)), _) => filtered(items, index),
        (Data::Array(list), Index::Star) => filtered_from(list.items()),
        (Data::Array(list), Index::Key { position, .. }) => position
            .and_then(|position| list.get(position))
            .unwrap_or(Data::Null),
        (Data::Object(map), Index::Star) => filtered_from(map.values()),
        (Data::Object(map), Index::Key { name, .. }) => name
            .as_deref()
            .and_then(|name| map.get(name))
            .unwrap_or(Data::Null),
        (_, Index::Star) => filtered_from(std::iter::empty()),
        (_, Index::Key { .. }) => Data::Null,
    }
}

fn filtered_from<'a>(items: impl Iterator<Item = Data<'a>>) -> Data<'a> {
    Data::Array(List::Filtered(Rc::new(items.collect())))
}

/// A step applied to each item of a filtered array; items it does not apply to drop out.
fn filtered<'a>(items: &[Data<'a>], index: &Index) -> Data<'a> {
    let mut found = Vec::new();
    for item in items {
        match (item, index) {
            (Data::Object(map), Index::Star) => found.extend(map.values()),
            (Data::Object(map), Index::Key { name, .. }) => {
                found.extend(name.as_deref().and_then(|name| map.get(name)));
            }
            (Data::Array(list), Index::Star) => found.extend(list.items()),
            (Data::Array(list), Index::Key { position, .. }) => {
                found.extend(position.and_then(|position| list.get(position)));
            }
            _ => {}
        }
    }
    Data::Array(List::Filtered(Rc::new(found)))
}
