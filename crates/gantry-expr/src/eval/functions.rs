//! The function implementations.
//!
//! Most functions evaluate all their arguments first. `case` and `format` evaluate only what
//! they need, as GitHub's engine does: `case` stops at the first true predicate and `format`
//! evaluates only the arguments its string refers to.

use std::borrow::Cow;
use std::rc::Rc;

use super::data::Data;
use super::format::{Segment, parse_format};
use super::json::{FromJsonError, parse_json, to_json_text};
use super::memory::StringBudget;
use super::{Evaluator, compare};
use crate::ast::Node;
use crate::error::ExprError;
use crate::functions::Function;
use crate::host::JobStatus;
use crate::text::upper_special;

impl<'a> Evaluator<'a> {
    pub(super) fn call(
        &mut self,
        function: Function,
        position: usize,
        args: &'a [Node],
        depth: usize,
    ) -> Result<Data<'a>, ExprError> {
        let result = match function {
            Function::Contains => {
                let (search, item) = self.two_args(args, depth)?;
                Data::Boolean(contains(&search, &item))
            }
            Function::StartsWith => {
                let (text, prefix) = self.two_args(args, depth)?;
                Data::Boolean(compare_affix(&text, &prefix, |text, affix| {
                    text.starts_with(affix)
                }))
            }
            Function::EndsWith => {
                let (text, suffix) = self.two_args(args, depth)?;
                Data::Boolean(compare_affix(&text, &suffix, |text, affix| {
                    text.ends_with(affix)
                }))
            }
            Function::Format => self.format(position, args, depth)?,
            Function::Join => self.join(position, args, depth)?,
            Function::ToJson => {
                let value = self.arg(args, 0, depth)?;
                let text = to_json_text(&value, self.memory.max())
                    .map_err(|_| self.out_of_memory(position))?;
                Data::string(text)
            }
            Function::FromJson => {
                let value = self.arg(args, 0, depth)?;
                parse_json(&value.coerce_string()).map_err(|error| {
                    let detail = match error {
                        FromJsonError::Empty => "empty input".to_owned(),
                        FromJsonError::Invalid(detail) => detail,
                    };
                    self.error(
                        format!("Error parsing JSON when evaluating fromJson: {detail}"),
                        position,
                    )
                })?
            }
            Function::Case => self.case(position, args, depth)?,
            Function::HashFiles => {
                let mut patterns = Vec::with_capacity(args.len());
                for index in 0..args.len() {
                    patterns.push(self.arg(args, index, depth)?.coerce_string().into_owned());
                }
                let hash = self
                    .host
                    .hash_files(&patterns)
                    .map_err(|message| self.error(message, position))?;
                Data::string(hash)
            }
            Function::Success | Function::Failure => {
                let status = if args.is_empty() {
                    self.step_status()
                } else {
                    let mut job_ids = Vec::with_capacity(args.len());
                    for index in 0..args.len() {
                        job_ids.push(self.arg(args, index, depth)?.coerce_string().into_owned());
                    }
                    self.host.needs_status(&job_ids)
                };
                let wanted = if function == Function::Success {
                    JobStatus::Success
                } else {
                    JobStatus::Failure
                };
                Data::Boolean(status == wanted)
            }
            Function::Cancelled => Data::Boolean(self.host.job_status() == JobStatus::Cancelled),
            Function::Always => Data::Boolean(true),
        };
        Ok(result)
    }

    /// Evaluates argument `index` one level below the call; a missing argument (which the
    /// parser's arity check rules out) reads as null rather than panicking.
    fn arg(&mut self, args: &'a [Node], index: usize, depth: usize) -> Result<Data<'a>, ExprError> {
        match args.get(index) {
            Some(node) => self.eval(node, depth + 1),
            None => Ok(Data::Null),
        }
    }

    fn two_args(
        &mut self,
        args: &'a [Node],
        depth: usize,
    ) -> Result<(Data<'a>, Data<'a>), ExprError> {
        let first = self.arg(args, 0, depth)?;
        let second = self.arg(args, 1, depth)?;
        Ok((first, second))
    }

    /// The status `success()` and `failure()` test: a composite action's own status inside its
    /// steps, the job's everywhere else.
    fn step_status(&self) -> JobStatus {
        self.host
            .success_failure_status()
            .unwrap_or_else(|| self.host.job_status())
    }

    fn format(
        &mut self,
        position: usize,
        args: &'a [Node],
        depth: usize,
    ) -> Result<Data<'a>, ExprError> {
        let format_value = self.arg(args, 0, depth)?;
        let format = format_value.coerce_string();
        let argument_count = args.len().saturating_sub(1);
        let segments = parse_format(&format, argument_count)
            .map_err(|error| self.error(error.message(&format), position))?;
        let mut cache: Vec<Option<Rc<str>>> = vec![None; argument_count];
        let mut budget = StringBudget::new(self.memory.max());
        let mut out = String::new();
        for segment in &segments {
            let piece: Cow<'_, str> = match segment {
                Segment::Literal(text) => Cow::Borrowed(text),
                Segment::Brace('{') => Cow::Borrowed("{"),
                Segment::Brace(_) => Cow::Borrowed("}"),
                Segment::Argument { index, specifiers } => {
                    let text = match cache.get(*index).cloned().flatten() {
                        Some(text) => text,
                        None => {
                            let value = self.arg(args, index + 1, depth)?;
                            if let Some(specifiers) = specifiers {
                                return Err(self.error(
                                    format!(
                                        "The format specifiers '{specifiers}' are not valid for objects of type '{}'",
                                        value.kind()
                                    ),
                                    position,
                                ));
                            }
                            let text: Rc<str> = Rc::from(value.coerce_string().as_ref());
                            if let Some(slot) = cache.get_mut(*index) {
                                *slot = Some(Rc::clone(&text));
                            }
                            text
                        }
                    };
                    Cow::Owned(text.as_ref().to_owned())
                }
            };
            budget
                .add(&piece)
                .map_err(|_| self.out_of_memory(position))?;
            out.push_str(&piece);
        }
        Ok(Data::string(out))
    }

    fn join(
        &mut self,
        position: usize,
        args: &'a [Node],
        depth: usize,
    ) -> Result<Data<'a>, ExprError> {
        let items = self.arg(args, 0, depth)?;
        let list = match &items {
            Data::Array(list) => list,
            Data::Object(_) => return Ok(Data::string("")),
            primitive => return Ok(Data::string(primitive.coerce_string().as_ref())),
        };
        let separator = if args.len() > 1 {
            let separator = self.arg(args, 1, depth)?;
            if separator.is_primitive() {
                separator.coerce_string().into_owned()
            } else {
                ",".to_owned()
            }
        } else {
            ",".to_owned()
        };
        let mut budget = StringBudget::new(self.memory.max());
        let mut out = String::new();
        for (index, item) in list.items().enumerate() {
            if index > 0 {
                budget
                    .add(&separator)
                    .map_err(|_| self.out_of_memory(position))?;
                out.push_str(&separator);
            }
            let text = item.coerce_string();
            budget
                .add(&text)
                .map_err(|_| self.out_of_memory(position))?;
            out.push_str(&text);
        }
        Ok(Data::string(out))
    }

    fn case(
        &mut self,
        position: usize,
        args: &'a [Node],
        depth: usize,
    ) -> Result<Data<'a>, ExprError> {
        let pairs = args.len().saturating_sub(1) / 2;
        for pair in 0..pairs {
            match self.arg(args, pair * 2, depth)? {
                Data::Boolean(true) => return self.arg(args, pair * 2 + 1, depth),
                Data::Boolean(false) => {}
                _ => {
                    return Err(
                        self.error("case predicate must evaluate to a boolean value", position)
                    );
                }
            }
        }
        self.arg(args, args.len().saturating_sub(1), depth)
    }
}

/// `contains(search, item)`: a case-insensitive substring test when both are primitives, an
/// `==` membership test when `search` is an array, false otherwise.
fn contains(search: &Data<'_>, item: &Data<'_>) -> bool {
    match search {
        Data::Array(list) => list
            .items()
            .any(|candidate| compare::equals(item, &candidate)),
        Data::Object(_) => false,
        _ if item.is_primitive() => {
            lower(&search.coerce_string()).contains(lower(&item.coerce_string()).as_ref())
        }
        _ => false,
    }
}

fn lower(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Owned(text.to_ascii_lowercase());
        }
        return Cow::Borrowed(text);
    }
    Cow::Owned(text.to_lowercase())
}

/// `startsWith`/`endsWith`: case-insensitive, false unless both arguments are primitives.
fn compare_affix(text: &Data<'_>, affix: &Data<'_>, test: fn(&str, &str) -> bool) -> bool {
    if !text.is_primitive() || !affix.is_primitive() {
        return false;
    }
    let text = upper_special(&text.coerce_string()).into_owned();
    let affix = upper_special(&affix.coerce_string()).into_owned();
    test(&text, &affix)
}
