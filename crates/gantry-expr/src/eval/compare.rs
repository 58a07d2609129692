//! `==`, `!=`, `<`, `<=`, `>`, `>=` with GitHub's loose coercion.
//!
//! Like JavaScript's `==` except that strings compare ignoring case and arrays and objects are
//! never converted: a number meets a string by converting the string to a number; null and
//! booleans become numbers (0, 0/1) whenever they meet another kind; arrays and objects equal
//! only themselves. NaN equals and orders against nothing. `<=` and `>=` are "equal or less" and
//! "equal or greater", which makes `null <= null` true while `null < null` is false.

use std::cmp::Ordering;

use super::data::Data;
use crate::ast::BinaryOp;
use crate::text::{compare_ignore_case, equals_ignore_case};

pub(crate) fn apply(op: BinaryOp, left: &Data<'_>, right: &Data<'_>) -> bool {
    match op {
        BinaryOp::Equal => equals(left, right),
        BinaryOp::NotEqual => !equals(left, right),
        BinaryOp::Less => order(left, right) == Some(Ordering::Less),
        BinaryOp::LessEqual => equals(left, right) || order(left, right) == Some(Ordering::Less),
        BinaryOp::Greater => order(left, right) == Some(Ordering::Greater),
        BinaryOp::GreaterEqual => {
            equals(left, right) || order(left, right) == Some(Ordering::Greater)
        }
    }
}

pub(crate) fn equals(left: &Data<'_>, right: &Data<'_>) -> bool {
    match (left, right) {
        (Data::Null, Data::Null) => true,
        (Data::Boolean(l), Data::Boolean(r)) => l == r,
        // IEEE equality already makes NaN unequal to everything and 0 equal to -0.
        (Data::Number(l), Data::Number(r)) => l == r,
        (Data::String(l), Data::String(r)) => equals_ignore_case(l.as_str(), r.as_str()),
        (Data::Array(l), Data::Array(r)) => l.is_same(r),
        (Data::Object(l), Data::Object(r)) => l.is_same(r),
        (Data::Number(_), Data::String(_)) => equals(left, &Data::Number(right.to_number())),
        (Data::String(_), Data::Number(_)) => equals(&Data::Number(left.to_number()), right),
        (Data::Null | Data::Boolean(_), _) => equals(&Data::Number(left.to_number()), right),
        (_, Data::Null | Data::Boolean(_)) => equals(left, &Data::Number(right.to_number())),
        _ => false,
    }
}

/// The ordering of two values after coercion, or `None` when they do not order (different
/// kinds, NaN, null against null, arrays, objects).
fn order(left: &Data<'_>, right: &Data<'_>) -> Option<Ordering> {
    match (left, right) {
        (Data::Boolean(l), Data::Boolean(r)) => Some(l.cmp(r)),
        (Data::Number(l), Data::Number(r)) => l.partial_cmp(r),
        (Data::String(l), Data::String(r)) => Some(compare_ignore_case(l.as_str(), r.as_str())),
        (Data::Null, Data::Null) => None,
        (Data::Number(_), Data::String(_)) => order(left, &Data::Number(right.to_number())),
        (Data::String(_), Data::Number(_)) => order(&Data::Number(left.to_number()), right),
        (Data::Null | Data::Boolean(_), _) => order(&Data::Number(left.to_number()), right),
        (_, Data::Null | Data::Boolean(_)) => order(left, &Data::Number(right.to_number())),
        _ => None,
    }
}
