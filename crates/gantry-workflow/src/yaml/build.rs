//! Building the [`Node`] tree from the parser's events, iteratively (deep input costs heap, not
//! stack) and within the limits of [`YamlLimits`].

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, Span, Tag};

use super::scalar::{resolve_plain, resolve_tagged};
use super::{Node, NodeValue, Pos, YamlError, YamlLimits};

/// A collection being filled while its children arrive.
struct Frame<'a> {
    node: Node<'a>,
    /// Anchor id to record the finished collection under, or 0.
    anchor: usize,
    /// For a mapping: the key waiting for its value.
    pending_key: Option<Node<'a>>,
    /// For a large mapping: the keys seen so far, to refuse duplicates in constant time. Small
    /// mappings (nearly all of them) are scanned instead, which allocates nothing.
    seen_keys: Option<HashSet<String>>,
}

/// Builds the tree of the single document in `source`. Syntax errors and exceeded limits stop
/// at once; duplicate and merge keys are collected so one pass reports all of them.
pub fn build<'a>(source: &'a str, limits: &YamlLimits) -> Result<Node<'a>, Vec<YamlError>> {
    let mut builder = Builder {
        limits,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        documents: 0,
        key_errors: Vec::new(),
    };
    for item in Parser::new_from_str(source) {
        let (event, span) = item.map_err(|error| {
            let marker = error.marker();
            vec![YamlError::new(
                position(marker.line(), marker.col()),
                error.info(),
            )]
        })?;
        builder.event(event, &span).map_err(|error| vec![error])?;
    }
    if !builder.key_errors.is_empty() {
        return Err(builder.key_errors);
    }
    Ok(builder.root.unwrap_or(Node {
        pos: Pos { line: 1, col: 1 },
        value: NodeValue::Null,
    }))
}

struct Builder<'a, 'l> {
    limits: &'l YamlLimits,
    stack: Vec<Frame<'a>>,
    /// Finished anchored nodes, by the parser's anchor id.
    anchors: HashMap<usize, Node<'a>>,
    /// Nodes created so far, aliases counted at their expanded size.
    nodes: usize,
    root: Option<Node<'a>>,
    documents: usize,
    /// Duplicate and merge keys found so far.
    key_errors: Vec<YamlError>,
}

impl<'a> Builder<'a, '_> {
    fn event(&mut self, event: Event<'a>, span: &Span) -> Result<(), YamlError> {
        let pos = position(span.start.line(), span.start.col());
        match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(YamlError::new(
                        pos,
                        "a workflow file must hold a single YAML document",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let node = Node {
                    // A block scalar's span starts at its first content line, so offsets into
                    // `run: |` text map to the right line.
                    pos,
                    value: scalar_value(text, style, tag.as_deref(), pos)?,
                };
                self.count(1, pos)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.add(node)?;
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if let Some(tag) = tag.as_deref()
                    && !tag.is_yaml_core_schema()
                {
                    return Err(unsupported_tag(tag, pos));
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(YamlError::new(
                        pos,
                        format!(
                            "nesting is deeper than the limit of {} levels",
                            self.limits.max_depth
                        ),
                    ));
                }
                self.count(1, pos)?;
                let value = if matches!(event, Event::SequenceStart(..)) {
                    NodeValue::Seq(Vec::new())
                } else {
                    NodeValue::Map(Vec::new())
                };
                self.stack.push(Frame {
                    node: Node { pos, value },
                    anchor,
                    pending_key: None,
                    seen_keys: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(YamlError::new(pos, "unbalanced collection end"));
                };
                if frame.anchor != 0 {
                    self.anchors.insert(frame.anchor, frame.node.clone());
                }
                self.add(frame.node)?;
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(YamlError::new(
                        pos,
                        "alias refers to an anchor that is not complete yet (recursive anchors are not supported)",
                    ));
                };
                let mut node = target.clone();
                self.count(node_count(&node), pos)?;
                node.pos = pos;
                self.add(node)?;
            }
            Event::UnresolvedAlias(name) => {
                return Err(YamlError::new(
                    pos,
                    format!("alias *{name} refers to an anchor that is not defined"),
                ));
            }
            _ => {}
        }
        Ok(())
    }

    /// Counts nodes against the limit, so an alias bomb fails before it is expanded further.
    fn count(&mut self, nodes: usize, pos: Pos) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(nodes);
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError::new(
                pos,
                format!(
                    "the document has more than {} nodes (aliases expanded)",
                    self.limits.max_nodes
                ),
            ));
        }
        Ok(())
    }

    /// Adds a finished node to the collection being built, or makes it the root.
    fn add(&mut self, node: Node<'a>) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut frame.node.value {
            NodeValue::Seq(items) => items.push(node),
            NodeValue::Map(entries) => match frame.pending_key.take() {
                None => {
                    let key_text = match &node.value {
                        NodeValue::Seq(_) | NodeValue::Map(_) => {
                            return Err(YamlError::new(
                                node.pos,
                                "mapping keys must be scalars, not collections",
                            ));
                        }
                        _ => node.scalar_text().unwrap_or_default(),
                    };
                    if key_text == "<<" && matches!(node.value, NodeValue::String(_)) {
                        self.key_errors.push(YamlError::new(
                            node.pos,
                            "GitHub Actions does not support YAML merge keys (`<<`)",
                        ));
                    } else if is_duplicate(entries, &mut frame.seen_keys, &key_text) {
                        self.key_errors.push(YamlError::new(
                            node.pos,
                            format!("duplicate key \"{key_text}\" in this mapping"),
                        ));
                    }
                    frame.pending_key = Some(node);
                }
                Some(key) => entries.push((key, node)),
            },
            _ => {}
        }
        Ok(())
    }
}

/// Mappings with more entries than this index their keys in a set.
const SCAN_LIMIT: usize = 16;

/// Whether `key` is already a key of `entries`, recording it for large mappings.
fn is_duplicate(
    entries: &[(Node<'_>, Node<'_>)],
    seen: &mut Option<HashSet<String>>,
    key: &str,
) -> bool {
    if let Some(seen) = seen {
        return !seen.insert(key.to_string());
    }
    let duplicate = entries.iter().any(|(existing, _)| match &existing.value {
        NodeValue::String(text) => text == key,
        _ => existing.scalar_text().as_deref() == Some(key),
    });
    if !duplicate && entries.len() >= SCAN_LIMIT {
        let mut set: HashSet<String> = entries
            .iter()
            .filter_map(|(existing, _)| existing.scalar_text())
            .collect();
        set.insert(key.to_string());
        *seen = Some(set);
    }
    duplicate
}

fn scalar_value<'a>(
    text: Cow<'a, str>,
    style: ScalarStyle,
    tag: Option<&Tag>,
    pos: Pos,
) -> Result<NodeValue<'a>, YamlError> {
    if let Some(tag) = tag {
        let resolved = tag
            .core_suffix()
            .and_then(|suffix| resolve_tagged(suffix, text));
        return resolved.ok_or_else(|| unsupported_tag(tag, pos));
    }
    Ok(match style {
        ScalarStyle::Plain => resolve_plain(text),
        _ => NodeValue::String(text),
    })
}

fn unsupported_tag(tag: &Tag, pos: Pos) -> YamlError {
    YamlError::new(
        pos,
        format!(
            "the YAML tag `{}{}` is not supported here (or does not fit its value)",
            tag.original_handle(),
            tag.suffix()
        ),
    )
}

fn node_count(node: &Node) -> usize {
    match &node.value {
        NodeValue::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        NodeValue::Map(entries) => {
            1 + entries
                .iter()
                .map(|(key, value)| node_count(key) + node_count(value))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Converts the parser's 1-based line and 0-based column.
fn position(line: usize, col: usize) -> Pos {
    Pos {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        col: u32::try_from(col + 1).unwrap_or(u32::MAX),
    }
}
