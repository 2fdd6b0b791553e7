//! What an operation costs, computed from its parsed document before async-graphql validates
//! it, in one pass over the document (each named fragment costed once, however often it is
//! spread), with saturating arithmetic:
//!
//! - `fields`: every field counts 1, and what a connection selects counts `first` times (50
//!   when not given; at least once, so `first: 0` does not hide a selection), what
//!   `applyTargets` selects once per entry of its list. This bounds the values an answer can
//!   hold, and also the work of validation, which expands every fragment spread: a document of
//!   fragments that double at each level costs what it expands to, and is refused before it is
//!   expanded (async-graphql's own count adds with a plain `+=` as it expands).
//! - `statements`: the fields that read or write the database (`target`, `targets`, `results`,
//!   `latestResult`, `stats`, the mutations), each occurrence once. Not multiplied by pages:
//!   the nodes of a list share one statement per field (see `loaders.rs`), but every alias does
//!   run its own.
//! - `introspection_depth`: the deepest nesting of `fields`, `interfaces`, `possibleTypes` and
//!   `inputFields`, which grows an introspection answer exponentially (graphql-js'
//!   `MaxIntrospectionDepthRule` allows 3; its standard introspection query needs 2).

use std::collections::HashMap;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Field, OperationDefinition, Selection, SelectionSet,
};
use async_graphql::{Name, Value as ConstValue, Variables};

use super::types::DEFAULT_PAGE;

/// The cost of an operation (of the dearest operation, for a document of several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub fields: u64,
    pub statements: u64,
    pub introspection_depth: u64,
}

impl Cost {
    /// Siblings: their costs add up; the depth is the deepest of them.
    fn and(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.saturating_add(other.fields),
            statements: self.statements.saturating_add(other.statements),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
        }
    }

    fn max(self, other: Cost) -> Cost {
        Cost {
            fields: self.fields.max(other.fields),
            statements: self.statements.max(other.statements),
            introspection_depth: self.introspection_depth.max(other.introspection_depth),
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

/// The cost of the dearest operation of `document`.
pub fn of_document(document: &ExecutableDocument, variables: &Variables) -> Cost {
    let operations: Vec<&OperationDefinition> = match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node],
        DocumentOperations::Multiple(ops) => ops.values().map(|op| &op.node).collect(),
    };
    operations
        .into_iter()
        .map(|operation| {
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
            };
            walker.selection_set(&operation.selection_set.node)
        })
        .fold(Cost::default(), Cost::max)
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<Name, ConstValue>,
    /// Each named fragment's cost once computed; None while it is being computed (a cycle,
    /// which validation refuses, counts nothing here).
    fragments: HashMap<Name, Option<Cost>>,
}

impl Walker<'_> {
    fn selection_set(&mut self, set: &SelectionSet) -> Cost {
        set.items
            .iter()
            .map(|item| match &item.node {
                Selection::Field(field) => self.field(&field.node),
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name.node),
            })
            .fold(Cost::default(), Cost::and)
    }

    fn fragment(&mut self, name: &Name) -> Cost {
        match self.fragments.get(name) {
            Some(Some(cost)) => return *cost,
            Some(None) => return Cost::default(),
            None => {}
        }
        let Some(definition) = self.document.fragments.get(name) else {
            return Cost::default(); // Unknown: validation says so.
        };
        self.fragments.insert(name.clone(), None);
        let cost = self.selection_set(&definition.node.selection_set.node);
        self.fragments.insert(name.clone(), Some(cost));
        cost
    }

    fn field(&mut self, field: &Field) -> Cost {
        let children = self.selection_set(&field.selection_set.node);
        let name = field.name.node.as_str();
        let times = self.multiplier(field).max(1);
        Cost {
            fields: times.saturating_mul(children.fields).saturating_add(1),
            statements: children
                .statements
                .saturating_add(u64::from(STATEMENT_FIELDS.contains(&name))),
            introspection_depth: children.introspection_depth
                + u64::from(INTROSPECTION_LISTS.contains(&name)),
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
            Some(ConstValue::Number(n)) => n.as_i64().map_or(u64::MAX, |n| n.max(0) as u64),
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
        assert_eq!(by_variable.fields, 500 * 2 + 1);
        let by_default = cost(
            "query($n: Int = 7) { targets(first: $n) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(by_default.fields, 7 * 2 + 1);
        let unset = cost("{ targets { nodes { id } } }", serde_json::json!({}));
        assert_eq!(unset.fields, 50 * 2 + 1);
        let zero = cost(
            "{ targets(first: 0) { nodes { id } } }",
            serde_json::json!({}),
        );
        assert_eq!(zero.fields, 2 + 1, "a selection counts at least once");
    }

    #[test]
    fn fragments_are_costed_once_and_doubling_cannot_wrap() {
        // 40 levels of fragments that each spread the one below twice: 2^40 fields.
        let mut query = String::from("{ ...f0 }\n");
        for level in 0..40 {
            query.push_str(&format!(
                "fragment f{level} on Query {{ ...f{next} ... on Query {{ ...f{next} }} }}\n",
                next = level + 1
            ));
        }
        query.push_str("fragment f40 on Query { targets(first: 500) { nodes { id } } }\n");
        let doubled = cost(&query, serde_json::json!({}));
        assert!(doubled.fields > 1 << 40, "{doubled:?}");
        // Far past u64: saturates instead of wrapping to something small.
        let huge = "{ targets(first: 2147483647) { nodes { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { target { results(first: 2147483647) { nodes { id } } } } } } } } } } }";
        assert_eq!(cost(huge, serde_json::json!({})).fields, u64::MAX);
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
