//! What a document costs, computed from its parsed form before async-graphql looks at it, in
//! one pass (each named fragment costed once, however often it is spread), with saturating
//! arithmetic, over every operation of the document (async-graphql checks and validates them
//! all, not only the one that runs):
//!
//! - `fields`: every selection (field, fragment spread, inline fragment) counts 1, plus 1 per
//!   directive and per node of its argument values; what a connection selects counts `first`
//!   times (50 when not given; at least once, so `first: 0` hides nothing), what a check's
//!   `assertions` or a result's `assertionFailures` selects 20 times (their longest), the dearest of
//!   `applyTargets`' report lists once per entry of its list (each entry lands in one). This
//!   bounds the values an answer can hold and also the
//!   work of async-graphql's recursion check and validation, which walk every fragment spread
//!   expanded: a document of fragments that double at each level costs what it expands to, and
//!   is refused before it is expanded (async-graphql's own count adds with a plain `+=`).
//! - `statements`: the fields that read or write the database (`target`, `targets`, `results`,
//!   `latestResult`, `stats`, `series`, the mutations), each occurrence once. Not multiplied by pages:
//!   the nodes of a list share one statement per field (see `loaders.rs`), but every alias does
//!   run its own.
//! - `introspection_depth`: the deepest nesting of `fields`, `interfaces`, `possibleTypes` and
//!   `inputFields`, which grows an introspection answer exponentially (graphql-js'
//!   `MaxIntrospectionDepthRule` refuses 3; its standard introspection query needs 1), and
//!   `introspection_roots`, the `__schema`/`__type` fields (aliases multiply an answer too).
//! - `too_deep`: selections nested (through fragments too) past async-graphql's recursion limit
//!   of 32, where this walk stops; `too_wide`: more than 32 arguments or directives on one
//!   selection, or 100 variables in one operation (rules compare those pairwise or look each
//!   use up among them); `unused`: a fragment no operation spreads (GraphQL refuses it, after
//!   validation has walked it).

use std::collections::{HashMap, HashSet};

use async_graphql::parser::Positioned;
use async_graphql::parser::types::{
    Directive, DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection,
    SelectionSet,
};
use async_graphql::{Name, Value as ConstValue, Variables};
use async_graphql_value::Value;

use super::types::DEFAULT_PAGE;

/// As async-graphql's recursion-depth check.
pub const MAX_RECURSION: usize = 32;

/// Arguments of one field or directive, directives of one selection: our schema's fields take
/// at most 6, and async-graphql's validation compares arguments pairwise (a field with 22,000
/// arguments spread twice cost it ~10^8 comparisons per fragment level).
pub const MAX_ARGUMENTS: usize = 32;

/// Variables of one operation (each use of one is looked up among them).
pub const MAX_VARIABLES: usize = 100;

/// Names (of operations, fragments, fields, aliases, arguments, variables, directives, types):
/// async-graphql writes them into its messages, one message per error.
pub const MAX_NAME_BYTES: usize = 128;

/// The cost of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub statements: u64,
    pub introspection_depth: u64,
    pub introspection_roots: u64,
    pub too_deep: bool,
    /// Why it is refused for its width: too many arguments or directives on one selection, or
    /// variables in one operation.
    pub too_wide: Option<String>,
    pub unused: Option<Name>,
}

/// What one selection set costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Part {
    fields: u64,
    statements: u64,
    introspection_depth: u64,
    introspection_roots: u64,
    /// How deep selections nest below this set, counted as async-graphql's recursion check
    /// counts them (a field with a selection, a spread, an inline fragment: one level each).
    height: usize,
}

impl Part {
    /// Siblings: their costs add up; the depth is the deepest of them.
    fn and(self, other: Part) -> Part {
        Part {
            fields: self.fields.saturating_add(other.fields),
            statements: self.statements.saturating_add(other.statements),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
            introspection_roots: self
                .introspection_roots
                .saturating_add(other.introspection_roots),
            height: self.height.max(other.height),
        }
    }

    /// One more selection around `self`, weighing `weight` itself.
    fn around(self, weight: u64) -> Part {
        Part {
            fields: self.fields.saturating_add(weight),
            ..self
        }
    }

    /// One level deeper.
    fn nested(self) -> Part {
        Part {
            height: self.height + 1,
            ..self
        }
    }
}

/// Fields whose resolver sends a statement.
const STATEMENT_FIELDS: [&str; 29] = [
    "target",
    "targets",
    "results",
    "latestResult",
    "stats",
    "series",
    "addTarget",
    "updateTarget",
    "removeTarget",
    "applyTargets",
    // Notifications (#14): the reads, a delivery page's changes and attempts (one statement
    // per page each), and the mutations.
    "channels",
    "routes",
    "deliveries",
    "changes",
    "attemptLog",
    "createChannel",
    "updateChannel",
    "deleteChannel",
    "applyChannels",
    "createRoute",
    "updateRoute",
    "deleteRoute",
    "testChannel",
    "redeliver",
    // Status pages (#16).
    "statusPages",
    "statusPage",
    "addStatusPage",
    "updateStatusPage",
    "removeStatusPage",
];

/// Introspection fields that return lists of types' parts.
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];

/// Connection fields: pages of `first` nodes.
const CONNECTIONS: [&str; 3] = ["targets", "results", "deliveries"];

/// Lists of objects without `first`, bounded by what is stored: a check holds at most
/// [`entity::assertion::MAX_ASSERTIONS`] assertions, and a result fails at most as many. (A
/// delivery's `changes` and `attemptLog` count once: bounding them by their largest, a
/// thousand changes, would refuse every page of the log that shows them.)
fn bounded_list(name: &str) -> Option<u64> {
    match name {
        "assertions" | "assertionFailures" => Some(entity::assertion::MAX_ASSERTIONS as u64),
        _ => None,
    }
}

/// The cost of `document`: all its operations together.
pub fn of_document(document: &ExecutableDocument, variables: &Variables, budget: u64) -> Cost {
    let (operations, names): (Vec<&OperationDefinition>, Vec<Option<&str>>) =
        match &document.operations {
            DocumentOperations::Single(op) => (vec![&op.node], vec![None]),
            DocumentOperations::Multiple(ops) => ops
                .iter()
                .map(|(name, op)| (&op.node, Some(name.as_str())))
                .unzip(),
        };
    let mut operation_names = names.into_iter();
    let mut total = Part::default();
    let mut too_deep = false;
    let mut too_wide = None;
    let mut reached: HashSet<Name> = HashSet::new();
    let mut spent = false;
    for operation in operations {
        if operation.variable_definitions.len() > MAX_VARIABLES {
            too_wide.get_or_insert(format!(
                "{} variables in one operation",
                operation.variable_definitions.len()
            ));
        }
        let defaults = operation
            .variable_definitions
            .iter()
            .filter_map(|d| {
                let default = d.node.default_value.as_ref()?;
                Some((d.node.name.node.clone(), default.node.clone()))
            })
            .collect();
        let mut walker = Walker {
            document,
            variables,
            defaults,
            fragments: HashMap::new(),
            variable_sizes: HashMap::new(),
            too_deep: false,
            too_wide: None,
        };
        // The operation's name, its variables' names and types, and its directives.
        if let Some(name) = &operation_names.next().flatten() {
            walker.name(name);
        }
        let mut declared = 0u64;
        for definition in &operation.variable_definitions {
            walker.name(&definition.node.name.node);
            walker.name(&definition.node.var_type.node.to_string());
            declared = declared.saturating_add(1);
        }
        let operation_directives = walker.directives(&operation.directives);
        let part = walker
            .selection_set(&operation.selection_set.node, 0)
            .around(operation_directives.saturating_add(declared));
        // A fragment costed where it was shallow may be spread deeper elsewhere: the height
        // of the whole operation says.
        too_deep |= walker.too_deep || part.height > MAX_RECURSION;
        total = total.and(part);
        if let Some(why) = walker.too_wide {
            too_wide.get_or_insert(why);
        }
        reached.extend(walker.fragments.into_keys());
        // Each operation walks its fragments afresh (their variables' defaults differ): once
        // the budget is spent, the rest cannot change the answer.
        if total.fields > budget {
            spent = true;
            break;
        }
    }
    // A walk stopped early has not reached every fragment it would have: none is called unused.
    let unused = if spent {
        None
    } else {
        document
            .fragments
            .keys()
            .find(|name| !reached.contains(*name))
            .cloned()
    };
    Cost {
        fields: total.fields,
        statements: total.statements,
        introspection_depth: total.introspection_depth,
        introspection_roots: total.introspection_roots,
        too_deep,
        too_wide,
        unused,
    }
}

/// The nodes of a request's variable value, as [`Walker::value_nodes`] counts them.
fn const_nodes(value: &ConstValue, depth: usize) -> u64 {
    if depth > MAX_RECURSION {
        return u64::MAX;
    }
    match value {
        ConstValue::List(items) => items
            .iter()
            .fold(1u64, |n, v| n.saturating_add(const_nodes(v, depth + 1))),
        ConstValue::Object(fields) => fields
            .values()
            .fold(1u64, |n, v| n.saturating_add(const_nodes(v, depth + 1))),
        _ => 1,
    }
}

/// The part of an argument's value the cost needs.
enum Shape {
    /// A number (None when not an integer).
    Number(Option<i64>),
    List(usize),
    Other,
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<Name, ConstValue>,
    /// Each named fragment's cost once computed; None while it is being computed (a cycle,
    /// which validation refuses, counts only its spreads here).
    fragments: HashMap<Name, Option<Part>>,
    /// The nodes of each variable's value, once looked up (async-graphql copies the value into
    /// every place the variable is used).
    variable_sizes: HashMap<Name, u64>,
    too_deep: bool,
    /// Why the document is refused for its width, if it is.
    too_wide: Option<String>,
}

impl Walker<'_> {
    /// Notes a name longer than [`MAX_NAME_BYTES`] (async-graphql repeats names in its
    /// messages, one per error).
    fn name(&mut self, name: &str) {
        if name.len() > MAX_NAME_BYTES && self.too_wide.is_none() {
            self.too_wide = Some(format!("a name of {} bytes", name.len()));
        }
    }

    /// The nodes of a value as written (a list or object counts 1 plus its items; a variable,
    /// the nodes of its value), stopping at [`MAX_RECURSION`] levels (deeper counts as too
    /// many).
    fn value_nodes(&mut self, value: &Value, depth: usize) -> u64 {
        if depth > MAX_RECURSION {
            return u64::MAX;
        }
        match value {
            Value::List(items) => items.iter().fold(1u64, |n, v| {
                n.saturating_add(self.value_nodes(v, depth + 1))
            }),
            Value::Object(fields) => fields.iter().fold(1u64, |n, (key, v)| {
                self.name(key);
                n.saturating_add(self.value_nodes(v, depth + 1))
            }),
            Value::Variable(name) => {
                self.name(name);
                if let Some(size) = self.variable_sizes.get(name) {
                    return *size;
                }
                let size = self
                    .variables
                    .get(name)
                    .or_else(|| self.defaults.get(name))
                    .map_or(1, |v| const_nodes(v, 0));
                self.variable_sizes.insert(name.clone(), size);
                size
            }
            Value::Enum(name) => {
                self.name(name);
                1
            }
            _ => 1,
        }
    }

    fn arguments(&mut self, arguments: &[(Positioned<Name>, Positioned<Value>)]) -> u64 {
        arguments.iter().fold(0u64, |n, (name, v)| {
            self.name(&name.node);
            n.saturating_add(self.value_nodes(&v.node, 0))
        })
    }

    fn directives(&mut self, directives: &[Positioned<Directive>]) -> u64 {
        directives.iter().fold(0u64, |n, d| {
            self.name(&d.node.name.node);
            n.saturating_add(1)
                .saturating_add(self.arguments(&d.node.arguments))
        })
    }

    fn selection_set(&mut self, set: &SelectionSet, depth: usize) -> Part {
        if depth > MAX_RECURSION {
            self.too_deep = true;
            return Part::default();
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => self.field(&field.node, depth),
                Selection::InlineFragment(inline) => {
                    self.wide(&inline.node.directives, &[]);
                    if let Some(condition) = &inline.node.type_condition {
                        self.name(&condition.node.on.node);
                    }
                    self.selection_set(&inline.node.selection_set.node, depth + 1)
                        .nested()
                        .around(1 + self.directives(&inline.node.directives))
                }
                Selection::FragmentSpread(spread) => {
                    self.wide(&spread.node.directives, &[]);
                    let name = &spread.node.fragment_name.node;
                    self.name(name);
                    let mut part = self.fragment(name, depth + 1);
                    // One level deeper, as async-graphql counts it: when the fragment exists.
                    if self.document.fragments.contains_key(name) {
                        part = part.nested();
                    }
                    part.around(1 + self.directives(&spread.node.directives))
                }
            })
            .fold(Part::default(), Part::and)
    }

    /// A named fragment's cost (an unknown one costs nothing: validation refuses it).
    fn fragment(&mut self, name: &Name, depth: usize) -> Part {
        match self.fragments.get(name) {
            Some(Some(part)) => return *part,
            Some(None) => return Part::default(),
            None => {}
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return Part::default();
        };
        self.fragments.insert(name.clone(), None);
        self.name(&definition.node.type_condition.node.on.node);
        let part = self
            .selection_set(&definition.node.selection_set.node, depth)
            .around(self.directives(&definition.node.directives));
        self.fragments.insert(name.clone(), Some(part));
        part
    }

    fn field(&mut self, field: &Field, depth: usize) -> Part {
        let nested = if field.selection_set.node.items.is_empty() {
            depth
        } else {
            depth + 1
        };
        let name = field.name.node.as_str();
        let mut children = self.selection_set(&field.selection_set.node, nested);
        // `applyTargets` reports each entry in one of its lists: its entries times its dearest
        // list (and every list once more for itself), not times all of them together.
        let mut dearest = None;
        if name == "applyTargets" && nested > depth {
            let mut most = 0u64;
            for item in &field.selection_set.node.items {
                let one = SelectionSet {
                    items: vec![item.clone()],
                };
                most = most.max(self.selection_set(&one, nested).fields);
            }
            dearest = Some(most);
        }
        if nested > depth {
            children = children.nested();
        }
        self.wide(&field.directives, &field.arguments);
        self.name(&field.name.node);
        if let Some(alias) = &field.alias {
            self.name(&alias.node);
        }
        let times = self.multiplier(field).max(1);
        let weight = 1u64
            .saturating_add(self.arguments(&field.arguments))
            .saturating_add(self.directives(&field.directives));
        let fields = match dearest {
            Some(dearest) => times
                .saturating_mul(dearest)
                .saturating_add(children.fields),
            None => times.saturating_mul(children.fields),
        };
        Part {
            fields: fields.saturating_add(weight),
            statements: children
                .statements
                .saturating_add(u64::from(STATEMENT_FIELDS.contains(&name))),
            introspection_depth: children.introspection_depth
                + u64::from(INTROSPECTION_LISTS.contains(&name)),
            introspection_roots: children
                .introspection_roots
                .saturating_add(u64::from(name == "__schema" || name == "__type")),
            height: children.height,
        }
    }

    /// Notes a selection with more directives or arguments than [`MAX_ARGUMENTS`]: some of
    /// async-graphql's rules compare arguments pairwise.
    fn wide(
        &mut self,
        directives: &[Positioned<Directive>],
        arguments: &[(Positioned<Name>, Positioned<Value>)],
    ) {
        if self.too_wide.is_some() {
            return;
        }
        if directives.len() > MAX_ARGUMENTS {
            self.too_wide = Some(format!("{} directives on one selection", directives.len()));
        } else if arguments.len() > MAX_ARGUMENTS {
            self.too_wide = Some(format!("{} arguments on one field", arguments.len()));
        } else if let Some(d) = directives
            .iter()
            .find(|d| d.node.arguments.len() > MAX_ARGUMENTS)
        {
            let n = d.node.arguments.len();
            self.too_wide = Some(format!("{n} arguments on one directive"));
        }
    }

    /// How many times what `field` selects is resolved.
    fn multiplier(&self, field: &Field) -> u64 {
        let name = field.name.node.as_str();
        let argument = |wanted: &str| {
            field
                .arguments
                .iter()
                .find(|(n, _)| n.node.as_str() == wanted)
                .map(|(_, v)| self.shape(&v.node))
        };
        if name == "applyTargets" {
            return match argument("targets") {
                Some(Shape::List(len)) => len as u64,
                _ => 1,
            };
        }
        match argument("first") {
            // Not an integer: validation refuses it.
            Some(Shape::Number(n)) => n.map_or(1, |n| n.max(0) as u64),
            _ if CONNECTIONS.contains(&name) => DEFAULT_PAGE as u64,
            _ => bounded_list(name).unwrap_or(1),
        }
    }

    /// What an argument's value is, its variable looked up (by reference: a variable may be
    /// large and is used many times) in the request, else in its default.
    fn shape(&self, value: &Value) -> Shape {
        let constant = match value {
            Value::Variable(name) => self.variables.get(name).or_else(|| self.defaults.get(name)),
            Value::Number(n) => return Shape::Number(n.as_i64()),
            Value::List(items) => return Shape::List(items.len()),
            _ => None,
        };
        match constant {
            Some(ConstValue::Number(n)) => Shape::Number(n.as_i64()),
            Some(ConstValue::List(items)) => Shape::List(items.len()),
            _ => Shape::Other,
        }
    }
}

/// The first two fields that share a response key in one selection set (merged through inline
/// fragments and spreads, as async-graphql's `OverlappingFieldsCanBeMerged` merges them) but
/// differ in name or arguments. That rule reports every such pair, with up to 34 errors per
/// pair per enclosing selection set: a document of one differing field and 50,000 repeats
/// asks it for tens of millions of errors. This stops at the first. Its work is bounded by the
/// cost: each selection set walks what it spreads once.
pub fn first_conflict(document: &ExecutableDocument) -> Option<String> {
    let mut sets: Vec<&SelectionSet> = document
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .chain(
            document
                .fragments
                .values()
                .map(|f| &f.node.selection_set.node),
        )
        .collect();
    while let Some(set) = sets.pop() {
        if let Some(conflict) = conflict_in(document, set) {
            return Some(conflict);
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => sets.push(&field.node.selection_set.node),
                Selection::InlineFragment(inline) => sets.push(&inline.node.selection_set.node),
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    None
}

fn conflict_in(document: &ExecutableDocument, set: &SelectionSet) -> Option<String> {
    let mut outputs: HashMap<(Option<&str>, &str), &Field> = HashMap::new();
    let mut visited: HashSet<&str> = HashSet::new();
    let mut pending = vec![(None, set)];
    while let Some((on_type, set)) = pending.pop() {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let key = field.alias.as_ref().unwrap_or(&field.name).node.as_str();
                    let Some(first) = outputs.get(&(on_type, key)) else {
                        outputs.insert((on_type, key), field);
                        continue;
                    };
                    let same = first.name.node == field.name.node
                        && first.arguments.len() == field.arguments.len()
                        && first.arguments.iter().all(|(name, value)| {
                            field
                                .get_argument(&name.node)
                                .is_some_and(|v| v.node == value.node)
                        });
                    if !same {
                        return Some(format!(
                            "Fields \"{key}\" conflict: \"{}\" and \"{}\" with their arguments \
                             are different fields. Use different aliases on the fields to fetch \
                             both if this was intentional.",
                            first.name.node, field.name.node
                        ));
                    }
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str());
                    pending.push((on, &inline.node.selection_set.node));
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if let Some(fragment) = document.fragments.get(name)
                        && visited.insert(name)
                    {
                        let on = Some(fragment.node.type_condition.node.on.node.as_str());
                        pending.push((on, &fragment.node.selection_set.node));
                    }
                }
            }
        }
    }
    None
}

/// How deep brackets (`{`, `[`, `(`) nest in a query's text, outside strings and comments:
/// checked before parsing, which recurses as deep.
pub fn bracket_depth(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            // A block string, when it is closed (else the parser reads its quotes otherwise,
            // and so does this scan: nothing after them is hidden).
            b'"' if bytes[i..].starts_with(b"\"\"\"") && block_end(bytes, i + 3).is_some() => {
                i = block_end(bytes, i + 3).unwrap_or(i) + 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// Where the block string whose text starts at `from` is closed (the first of its closing
/// quotes), skipping escaped `\"""`.
fn block_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\\"\"\"") {
            i += 4;
        } else if bytes[i..].starts_with(b"\"\"\"") {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// Deepest bracket nesting parsed (selection sets are limited to 32 anyway).
pub const MAX_BRACKETS: usize = 64;

#[cfg(test)]
mod tests {
    use super::*;

    /// Fragments `f0` … `f{levels}` on Query: each `body` with `NEXT` naming the one below,
    /// the last `last`.
    fn fragments(levels: usize, body: &str, last: &str) -> String {
        let mut document: String = (0..levels)
            .map(|level| {
                let body = body.replace("NEXT", &format!("f{}", level + 1));
                format!("fragment f{level} on Query {{ {body} }}\n")
            })
            .collect();
        document.push_str(&format!("fragment f{levels} on Query {{ {last} }}\n"));
        document
    }

    fn cost(query: &str, variables: serde_json::Value) -> Cost {
        let document = async_graphql::parser::parse_query(query).unwrap();
        of_document(&document, &Variables::from_json(variables), u64::MAX)
    }

    #[test]
    fn pages_multiply_what_they_select() {
        // 500 × (1 + 500 × (1 + 1 + 2)) + 1 + … : `nodes` and `target` count too.
        let big = cost(
            "{ targets(first: 500) { nodes { results(first: 500) { nodes { target { url } } } } } }",
            serde_json::json!({}),
        );
        assert!(big.fields > 500 * 500 * 3, "{big:?}");
        assert_eq!(big.statements, 3);
        let by_variable = cost(
            "query($n: Int = 7) { targets(first: $n) { nodes { id } } }",
            serde_json::json!({"n": 500}),
        );
        assert_eq!(
            by_variable.fields,
            500 * 2 + 2 + 1,
            "the argument and the variable count 1"
        );
        let by_default = cost(
            "query($n: Int = 7) { targets(first: $n) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(by_default.fields, 7 * 2 + 2 + 1);
        let unset = cost("{ targets { nodes { id } } }", serde_json::json!({}));
        assert_eq!(unset.fields, 50 * 2 + 1);
        let zero = cost(
            "{ targets(first: 0) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(zero.fields, 2 + 2, "a selection counts at least once");
        // A check holds up to 20 assertions: what they select counts 20 times.
        let assertions = cost(
            "{ target(id: 1) { check { assertions { source value } } } }",
            serde_json::json!({}),
        );
        assert_eq!(assertions.fields, 1 + 1 + 1 + 1 + 20 * 2);
    }

    #[test]
    fn fragments_are_costed_once_and_doubling_cannot_wrap() {
        // 14 levels of fragments that each spread the one below twice (once inside an inline
        // fragment: 28 levels of nesting, and 4 more below, within the limit of 32): 2^14 pages
        // of 500.
        let query = "{ ...f0 }\n".to_owned()
            + &fragments(
                14,
                "...NEXT ... on Query { ...NEXT }",
                "targets(first: 500) { nodes { id } }",
            );
        let doubled = cost(&query, serde_json::json!({}));
        assert!(!doubled.too_deep, "{doubled:?}");
        assert!(doubled.fields > (1 << 14) * 500 * 2, "{doubled:?}");
        // Far past u64: saturates instead of wrapping to something small.
        let huge = "{ targets(first: 2147483647) { nodes { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { id } } } } } } } } } } }";
        assert_eq!(cost(huge, serde_json::json!({})).fields, u64::MAX);
    }

    /// Documents async-graphql would walk exponentially (or too deep) before validating them.
    #[test]
    fn what_async_graphql_would_expand_is_counted_before() {
        // Spreads of an unknown fragment still count: 2^31 of them.
        let unknown = "{ ...f0 }\n".to_owned() + &fragments(31, "...NEXT ...NEXT", "...nope");
        assert!(cost(&unknown, serde_json::json!({})).fields > 1 << 31);
        // Every operation counts, not only the one that runs.
        let mut many = fragments(10, "...NEXT ...NEXT", "frequencies");
        for op in 0..100 {
            many.push_str(&format!("query q{op} {{ ...f0 }}\n"));
        }
        assert!(cost(&many, serde_json::json!({})).fields > 100 * (1 << 10));
        // Directives and argument values weigh what they hold, each time they are expanded.
        let directives = "@skip(if: false) ".repeat(1000);
        let heavy = format!("{{ ...a ...a }} fragment a on Query {{ frequencies {directives} }}");
        assert!(cost(&heavy, serde_json::json!({})).fields > 2 * 2000);
        // A fragment no operation uses is named; a chain deeper than 32 is flagged (and not
        // followed further).
        let unused = cost(
            "{ frequencies } fragment x on Query { frequencies }",
            serde_json::json!({}),
        );
        assert_eq!(unused.unused.as_ref().map(|n| n.as_str()), Some("x"));
        let chain = "{ ...f0 }\n".to_owned() + &fragments(5000, "...NEXT", "frequencies");
        let deep = cost(&chain, serde_json::json!({}));
        assert!(deep.too_deep, "{deep:?}");
        // A fragment first costed where it is shallow and spread again deep down.
        let mut nested = String::from("{ ...leaf ");
        for _ in 0..32 {
            nested.push_str("... on Query { ");
        }
        nested.push_str("...leaf ");
        nested.push_str(&"} ".repeat(33));
        nested.push_str("fragment leaf on Query { __typename }");
        assert!(cost(&nested, serde_json::json!({})).too_deep);
        // Too many arguments on a field or a directive, directives on a selection, variables.
        let args: String = (0..33).map(|i| format!("a{i}: 0 ")).collect();
        for document in [
            format!("{{ frequencies({args}) }}"),
            format!("{{ frequencies @skip({args}) }}"),
            format!("{{ frequencies {} }}", "@skip(if: false) ".repeat(33)),
            format!(
                "query({}) {{ frequencies }}",
                (0..101).map(|i| format!("$v{i}: Int ")).collect::<String>()
            ),
        ] {
            let wide = cost(&document, serde_json::json!({}));
            assert!(wide.too_wide.is_some(), "{document}");
        }
        let args: String = (0..32).map(|i| format!("a{i}: 0 ")).collect();
        assert_eq!(
            cost(&format!("{{ frequencies({args}) }}"), serde_json::json!({})).too_wide,
            None
        );
        // Names longer than 128 bytes; variables weigh their value at each use.
        let long = cost(
            &format!("{{ {}: frequencies }}", "a".repeat(129)),
            serde_json::json!({}),
        );
        assert!(long.too_wide.is_some());
        let used = cost(
            "{ a: frequencies @skip(if: $v) b: frequencies @skip(if: $v) }",
            serde_json::json!({"v": [1, 2, 3, 4, 5, 6, 7, 8, 9]}),
        );
        assert!(used.fields > 2 * 10, "{used:?}");
        // Aliased introspection roots add up.
        let roots: String = (0..6)
            .map(|i| format!("s{i}: __schema {{ queryType {{ name }} }} "))
            .collect();
        assert_eq!(
            cost(&format!("{{ {roots} }}"), serde_json::json!({})).introspection_roots,
            6
        );
    }

    #[test]
    fn apply_targets_counts_its_entries_once_over_its_dearest_list() {
        let entries: Vec<serde_json::Value> = (0..5000)
            .map(|i| serde_json::json!({"url": format!("http://127.0.0.1/{i}"), "frequency": 5, "paused": false}))
            .collect();
        let all_lists = cost(
            "mutation($t: [TargetInput!]!) { applyTargets(targets: $t) { \
               added { id url } changed { id url } removed { id url } unchanged { id url } } }",
            serde_json::json!({"t": entries}),
        );
        // 5,000 entries × 4 nodes of input, 5,000 × the dearest list (3), the lists once more.
        assert!(all_lists.fields < 50_000, "{all_lists:?}");
        assert!(all_lists.fields > 5000 * 3 + 5000 * 4, "{all_lists:?}");
    }

    #[test]
    fn conflicting_fields_and_deep_brackets_are_found() {
        let parse = |q: &str| async_graphql::parser::parse_query(q).unwrap();
        assert!(first_conflict(&parse("{ a: frequencies a: frequencies }")).is_none());
        assert!(first_conflict(&parse("{ a: frequencies a: target(id: 1) { id } }")).is_some());
        // Through a spread and an inline fragment, and by arguments.
        let spread = "{ ... on Query { t: target(id: 1) { id } } ...F } \
                      fragment F on Query { t: target(id: 1) { url } }";
        assert!(
            first_conflict(&parse(spread)).is_none(),
            "same field, same arguments"
        );
        let differ = "{ t: target(id: 1) { id } ... { t: target(id: 2) { id } } }";
        assert!(first_conflict(&parse(differ)).is_some());
        assert_eq!(bracket_depth("{ a(x: [[1]]) { b } }"), 4);
        // A comment ends at a carriage return too; a block string never closed hides nothing.
        assert_eq!(bracket_depth("{ # x\r a(x: [[[1]]]) }"), 5);
        assert_eq!(bracket_depth("{ a(x: [\"\"\"\"], y: [[[1]]]) }"), 5);
        assert_eq!(bracket_depth("{ a(x: \"[[[[\") # {{{{\n }"), 2);
        assert_eq!(bracket_depth("{ a(x: \"\"\"[[[ \\\"\"\" [[\"\"\") }"), 2);
    }

    #[test]
    fn aliases_each_count_a_statement_and_introspection_depth_is_measured() {
        let aliases: String = (0..100)
            .map(|i| format!("a{i}: target(id: {i}) {{ latestResult {{ id }} }} "))
            .collect();
        assert_eq!(
            cost(&format!("{{ {aliases} }}"), serde_json::json!({})).statements,
            200
        );
        let deep = "{ __type(name: \"Target\") { fields { type { fields { type { fields { type { fields { name } } } } } } } } }";
        assert_eq!(cost(deep, serde_json::json!({})).introspection_depth, 4);
    }
}
