//! The rows one multi-row statement writes or matches, and how each backend is sent them.
//!
//! Writes stored together (`transitions_together.rs`) change many rows of a table with one
//! statement. SQLite gets the rows as parameters written out row after row (a compound
//! `SELECT` of cast parameters, or a `VALUES` list), so the statement's text grows with the
//! rows; a compound `SELECT` holds at most [`Backend::ROWS_PER_STATEMENT`] (a `VALUES` list is
//! not one, and callers may put more rows in it). PostgreSQL gets one array per
//! column and reads them back as rows with `unnest`: the statement's text is the same for any
//! number of rows, so it is prepared once per connection and not planned again for each batch
//! size. Planning the row-after-row form was 44 % of PostgreSQL's time in a drain (`perf`,
//! `GetCachedPlan`: every batch size is a statement of its own, each planned custom).
//!
//! The statements in `queries.rs` take the rows' text from here as their table `v` (an
//! `UPDATE … FROM`) or as the rows to insert; [`Backend::bind_rows`] then binds the values in
//! the order that text numbers them.

use super::Backend;

/// The values of one column, one per row.
pub enum Values<'a> {
    Int(Vec<i64>),
    MaybeInt(Vec<Option<i64>>),
    Text(Vec<&'a str>),
    MaybeText(Vec<Option<&'a str>>),
}

impl Values<'_> {
    /// The column's SQL type, as both backends name it.
    pub fn sql_type(&self) -> &'static str {
        match self {
            Values::Int(_) | Values::MaybeInt(_) => "BIGINT",
            Values::Text(_) | Values::MaybeText(_) => "TEXT",
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Int(values) => values.len(),
            Values::MaybeInt(values) => values.len(),
            Values::Text(values) => values.len(),
            Values::MaybeText(values) => values.len(),
        }
    }
}

/// Named columns of equal length: the rows of one multi-row statement.
#[derive(Default)]
pub struct Rows<'a> {
    columns: Vec<(&'static str, Values<'a>)>,
}

impl<'a> Rows<'a> {
    pub fn new() -> Self {
        Rows::default()
    }

    /// Adds a column of integers.
    pub fn int(self, name: &'static str, values: impl IntoIterator<Item = i64>) -> Self {
        self.with(name, Values::Int(values.into_iter().collect()))
    }

    /// Adds a column of integers that may be NULL.
    pub fn maybe_int(
        self,
        name: &'static str,
        values: impl IntoIterator<Item = Option<i64>>,
    ) -> Self {
        self.with(name, Values::MaybeInt(values.into_iter().collect()))
    }

    /// Adds a column of texts.
    pub fn text(self, name: &'static str, values: impl IntoIterator<Item = &'a str>) -> Self {
        self.with(name, Values::Text(values.into_iter().collect()))
    }

    /// Adds a column of texts that may be NULL.
    pub fn maybe_text(
        self,
        name: &'static str,
        values: impl IntoIterator<Item = Option<&'a str>>,
    ) -> Self {
        self.with(name, Values::MaybeText(values.into_iter().collect()))
    }

    fn with(mut self, name: &'static str, values: Values<'a>) -> Self {
        debug_assert!(
            self.columns
                .first()
                .is_none_or(|(_, first)| first.len() == values.len()),
            "column {name} has another number of rows"
        );
        self.columns.push((name, values));
        self
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, |(_, values)| values.len())
    }

    /// The columns in order, with their values.
    pub fn columns(&self) -> &[(&'static str, Values<'a>)] {
        &self.columns
    }

    /// The columns' names, comma-separated.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }
}

/// SQLite's table `v`: a compound `SELECT` of cast parameters numbered `$1, $2, …` row after
/// row. SQLite cannot name the columns of a `VALUES` list, and the casts type them.
pub(crate) fn cast_rows_table(rows: &Rows<'_>) -> String {
    let columns = rows.columns();
    let mut sql = String::with_capacity(rows.len() * columns.len() * 32 + 8);
    sql.push('(');
    for row in 0..rows.len() {
        if row > 0 {
            sql.push_str(" UNION ALL ");
        }
        sql.push_str("SELECT ");
        for (index, (name, values)) in columns.iter().enumerate() {
            if index > 0 {
                sql.push_str(", ");
            }
            let parameter = row * columns.len() + index + 1;
            sql.push_str(&format!(
                "CAST(${parameter} AS {}) AS {name}",
                values.sql_type()
            ));
        }
    }
    sql.push_str(") AS v");
    sql
}

/// SQLite's rows to insert: a `VALUES` list numbered row after row.
pub(crate) fn values_list(rows: &Rows<'_>) -> String {
    let width = rows.columns().len();
    let mut sql = String::from("VALUES ");
    for row in 0..rows.len() {
        if row > 0 {
            sql.push_str(", ");
        }
        let parameters: Vec<String> = (1..=width)
            .map(|column| format!("${}", row * width + column))
            .collect();
        sql.push_str(&format!("({})", parameters.join(", ")));
    }
    sql
}

/// PostgreSQL's table `v`: one array parameter per column, `$1` the first, read back as rows.
pub(crate) fn unnest_table(rows: &Rows<'_>) -> String {
    let arrays: Vec<String> = rows
        .columns()
        .iter()
        .enumerate()
        .map(|(index, (_, values))| format!("${}::{}[]", index + 1, values.sql_type()))
        .collect();
    format!("unnest({}) AS v({})", arrays.join(", "), rows.names())
}

/// PostgreSQL's rows to insert: the table of [`unnest_table`], selected whole.
pub(crate) fn unnest_select(rows: &Rows<'_>) -> String {
    format!("SELECT {} FROM {}", rows.names(), unnest_table(rows))
}

/// The chunks of at most [`Backend::ROWS_PER_STATEMENT`] items that `items` split into.
pub(crate) fn chunks<DB: Backend, T>(items: &[T]) -> std::slice::Chunks<'_, T> {
    items.chunks(DB::ROWS_PER_STATEMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_rows() -> Rows<'static> {
        Rows::new()
            .int("id", [7, 8])
            .maybe_text("status", [Some("queued"), None])
    }

    #[test]
    fn sqlite_tables_number_the_parameters_row_after_row() {
        assert_eq!(
            cast_rows_table(&two_rows()),
            "(SELECT CAST($1 AS BIGINT) AS id, CAST($2 AS TEXT) AS status UNION ALL \
             SELECT CAST($3 AS BIGINT) AS id, CAST($4 AS TEXT) AS status) AS v"
        );
        assert_eq!(values_list(&two_rows()), "VALUES ($1, $2), ($3, $4)");
    }

    #[test]
    fn postgresql_tables_take_one_array_per_column_whatever_the_rows() {
        let table = "unnest($1::BIGINT[], $2::TEXT[]) AS v(id, status)";
        assert_eq!(unnest_table(&two_rows()), table);
        let one_row = Rows::new().int("id", [1]).maybe_text("status", [None]);
        assert_eq!(unnest_table(&one_row), table);
        assert_eq!(
            unnest_select(&two_rows()),
            format!("SELECT id, status FROM {table}")
        );
    }

    #[test]
    fn rows_count_the_values_of_their_columns() {
        assert_eq!(two_rows().len(), 2);
        assert_eq!(Rows::new().len(), 0);
        assert_eq!(two_rows().names(), "id, status");
    }
}
