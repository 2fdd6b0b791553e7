//! What a document costs, computed from its parsed form before async-graphql looks at it, in
//! one pass (each named fragment costed once, however often it is spread), with saturating
//! arithmetic, over every operation of the document (async-graphql checks and validates them
//! all, not only the one that runs):
//!
//! - `fields`: every selection (field, fragment spread, inline fragment) counts 1, plus 1 per
//!   directive and per node of its argument values; what a connection selects counts `first`
//!   times (50 when not given; at least once, so `first: 0` hides nothing), what `applyTargets`
//!   selects once per entry of its list. This bounds the values an answer can hold and also the
//!   work of async-graphql's recursion check and validation, which walk every fragment spread
//!   expanded: a document of fragments that double at each level costs what it expands to, and
//!   is refused before it is expanded (async-graphql's own count adds with a plain `+=`).
//! - `statements`: the fields that read or write the database (`target`, `targets`, `results`,
//!   `latestResult`, `stats`, the mutations), each occurrence once. Not multiplied by pages:
//!   the nodes of a list share one statement per field (see `loaders.rs`), but every alias does
//!   run its own.
//! - `introspection_depth`: the deepest nesting of `fields`, `interfaces`, `possibleTypes` and
//!   `inputFields`, which grows an introspection answer exponentially (graphql-js'
//!   `MaxIntrospectionDepthRule` allows 3; its standard introspection query needs 2), and
//!   `introspection_roots`, the `__schema`/`__type` fields (aliases multiply an answer too).
//! - `too_deep`: selections nested (through fragments too) past async-graphql's recursion limit
//!   of 32, where this walk stops; `unused`: a fragment no operation spreads (GraphQL refuses
//!   it, after validation has walked it).

use std::collections::HashMap;

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

/// The cost of a document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub statements: u64,
    pub introspection_depth: u64,
    pub introspection_roots: u64,
    pub too_deep: bool,
    pub unused: Option<Name>,
}

/// What one selection set costs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Part {
    fields: u64,
    statements: u64,
    introspection_depth: u64,
    introspection_roots: u64,
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
        }
    }

    /// One more selection around `self`, weighing `weight` itself.
    fn around(self, weight: u64) -> Part {
        Part {
            fields: self.fields.saturating_add(weight),
            ..self
        }
    }
}

/// Fields whose resolver sends a statement.
const STATEMENT_FIELDS: [&str; 9] = [
    "target",
    "targets",
    "results",
    "latestResult",
    "stats",
    "addTarget",
    "updateTarget",
    "removeTarget",
    "applyTargets",
];

/// Introspection fields that return lists of types' parts.
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];

/// Connection fields: pages of `first` nodes.
const CONNECTIONS: [&str; 2] = ["targets", "results"];

/// The cost of `document`: all its operations together.
pub fn of_document(document: &ExecutableDocument, variables: &Variables) -> Cost {
    let operations: Vec<&OperationDefinition> = match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node).collect(),
    };
    let mut total = Part::default();
    let mut too_deep = false;
    let mut reached: Vec<Name> = Vec::new();
    for operation in operations {
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
            too_deep: false,
        };
        let part = walker
            .selection_set(&operation.selection_set.node, 0)
            .around(directives(&operation.directives));
        total = total.and(part);
        too_deep |= walker.too_deep;
        reached.extend(walker.fragments.into_keys());
    }
    let unused = document
        .fragments
        .keys()
        .find(|name| !reached.contains(name))
        .cloned();
    Cost {
        fields: total.fields,
        statements: total.statements,
        introspection_depth: total.introspection_depth,
        introspection_roots: total.introspection_roots,
        too_deep,
        unused,
    }
}

/// The nodes of a value as written (a list or object counts 1 plus its items), stopping at
/// `depth` levels (deeper counts as too many).
fn value_nodes(value: &Value, depth: usize) -> u64 {
    if depth > MAX_RECURSION {
        return u64::MAX;
    }
    match value {
        Value::List(items) => items
            .iter()
            .fold(1u64, |n, v| n.saturating_add(value_nodes(v, depth + 1))),
        Value::Object(fields) => fields
            .values()
            .fold(1u64, |n, v| n.saturating_add(value_nodes(v, depth + 1))),
        _ => 1,
    }
}

fn arguments(arguments: &[(Positioned<Name>, Positioned<Value>)]) -> u64 {
    arguments
        .iter()
        .fold(0u64, |n, (_, v)| n.saturating_add(value_nodes(&v.node, 0)))
}

fn directives(directives: &[Positioned<Directive>]) -> u64 {
    directives.iter().fold(0u64, |n, d| {
        n.saturating_add(1)
            .saturating_add(arguments(&d.node.arguments))
    })
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<Name, ConstValue>,
    /// Each named fragment's cost once computed; None while it is being computed (a cycle,
    /// which validation refuses, counts only its spreads here).
    fragments: HashMap<Name, Option<Part>>,
    too_deep: bool,
}

impl Walker<'_> {
    fn selection_set(&mut self, set: &SelectionSet, depth: usize) -> Part {
        if depth > MAX_RECURSION {
            self.too_deep = true;
            return Part::default();
        }
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => self.field(&field.node, depth),
                Selection::InlineFragment(inline) => self
                    .selection_set(&inline.node.selection_set.node, depth + 1)
                    .around(1 + directives(&inline.node.directives)),
                Selection::FragmentSpread(spread) => self
                    .fragment(&spread.node.fragment_name.node, depth + 1)
                    .around(1 + directives(&spread.node.directives)),
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
        let part = self
            .selection_set(&definition.node.selection_set.node, depth)
            .around(directives(&definition.node.directives));
        self.fragments.insert(name.clone(), Some(part));
        part
    }

    fn field(&mut self, field: &Field, depth: usize) -> Part {
        let nested = if field.selection_set.node.items.is_empty() {
            depth
        } else {
            depth + 1
        };
        let children = self.selection_set(&field.selection_set.node, nested);
        let name = field.name.node.as_str();
        let times = self.multiplier(field).max(1);
        let weight = 1u64
            .saturating_add(arguments(&field.arguments))
            .saturating_add(directives(&field.directives));
        Part {
            fields: times.saturating_mul(children.fields).saturating_add(weight),
            statements: children
                .statements
                .saturating_add(u64::from(STATEMENT_FIELDS.contains(&name))),
            introspection_depth: children.introspection_depth
                + u64::from(INTROSPECTION_LISTS.contains(&name)),
            introspection_roots: children
                .introspection_roots
                .saturating_add(u64::from(name == "__schema" || name == "__type")),
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
                .map(|(_, v)| {
                    // Its variables replaced by the request's value or their default.
                    v.node
                        .clone()
                        .into_const_with(|name| {
                            Ok::<_, std::convert::Infallible>(self.variable(&name))
                        })
                        .unwrap_or(ConstValue::Null)
                })
        };
        if name == "applyTargets" {
            return match argument("targets") {
                Some(ConstValue::List(list)) => list.len() as u64,
                _ => 1,
            };
        }
        match argument("first") {
            // Not an integer: validation refuses it.
            Some(ConstValue::Number(n)) => n.as_i64().map_or(1, |n| n.max(0) as u64),
            _ if CONNECTIONS.contains(&name) => DEFAULT_PAGE as u64,
            _ => 1,
        }
    }

    /// A variable's value: the request's, else its default, else null.
    fn variable(&self, name: &Name) -> ConstValue {
        self.variables
            .get(name)
            .or_else(|| self.defaults.get(name))
            .cloned()
            .unwrap_or(ConstValue::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(query: &str, variables: serde_json::Value) -> Cost {
        let document = async_graphql::parser::parse_query(query).unwrap();
        of_document(&document, &Variables::from_json(variables))
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
        assert_eq!(by_variable.fields, 500 * 2 + 2, "the argument counts 1");
        let by_default = cost(
            "query($n: Int = 7) { targets(first: $n) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(by_default.fields, 7 * 2 + 2);
        let unset = cost("{ targets { nodes { id } } }", serde_json::json!({}));
        assert_eq!(unset.fields, 50 * 2 + 1);
        let zero = cost(
            "{ targets(first: 0) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(zero.fields, 2 + 2, "a selection counts at least once");
    }

    #[test]
    fn fragments_are_costed_once_and_doubling_cannot_wrap() {
        // 15 levels of fragments that each spread the one below twice (once inside an inline
        // fragment: 30 levels of nesting, within the limit of 32): 2^15 pages of 500.
        let mut query = String::from("{ ...f0 }\n");
        for level in 0..15 {
            query.push_str(&format!(
                "fragment f{level} on Query {{ ...f{next} ... on Query {{ ...f{next} }} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment f15 on Query { targets(first: 500) { nodes { id } } }\n");
        let doubled = cost(&query, serde_json::json!({}));
        assert!(!doubled.too_deep, "{doubled:?}");
        assert!(doubled.fields > (1 << 15) * 500 * 2, "{doubled:?}");
        // Far past u64: saturates instead of wrapping to something small.
        let huge = "{ targets(first: 2147483647) { nodes { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { id } } } } } } } } } } }";
        assert_eq!(cost(huge, serde_json::json!({})).fields, u64::MAX);
    }

    /// Documents async-graphql would walk exponentially (or too deep) before validating them.
    #[test]
    fn what_async_graphql_would_expand_is_counted_before() {
        // Spreads of an unknown fragment still count: 2^31 of them.
        let mut unknown = String::from("{ ...f0 }\n");
        for level in 0..31 {
            unknown.push_str(&format!(
                "fragment f{level} on Query {{ ...f{next} ...f{next} }}\n",
                next = level + 1
            ));
        }
        unknown.push_str("fragment f31 on Query { ...nope }\n");
        assert!(cost(&unknown, serde_json::json!({})).fields > 1 << 31);
        // Every operation counts, not only the one that runs.
        let mut many = String::from("fragment f0 on Query { ...f1 ...f1 }\n");
        for level in 1..10 {
            many.push_str(&format!(
                "fragment f{level} on Query {{ ...f{next} ...f{next} }}\n",
                next = level + 1
            ));
        }
        many.push_str("fragment f10 on Query { frequencies }\n");
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
        let mut chain = String::from("{ ...f0 }\n");
        for level in 0..5000 {
            chain.push_str(&format!(
                "fragment f{level} on Query {{ ...f{} }}\n",
                level + 1
            ));
        }
        chain.push_str("fragment f5000 on Query { frequencies }\n");
        let deep = cost(&chain, serde_json::json!({}));
        assert!(deep.too_deep, "{deep:?}");
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
