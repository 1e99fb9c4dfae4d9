//! Flat `[n]` or `rows × cols` row-major f64 arrays: shapes, row views and JSON
//! pointers to elements. No math lives here.

/// The shape of `predictions` / `targets` as the client sent it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `number[]` of length n: one row for per-row kinds.
    Flat(usize),
    /// `number[][]`: rows = samples, all rows the same non-zero length.
    Matrix {
        /// The number of rows (samples).
        rows: usize,
        /// Elements per row.
        cols: usize,
    },
}

impl Shape {
    /// The number of elements.
    pub fn len(self) -> usize {
        match self {
            Shape::Flat(n) => n,
            Shape::Matrix { rows, cols } => rows * cols,
        }
    }
    /// Whether there are no elements.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
    /// Rows: a flat array is a single row.
    pub fn rows(self) -> usize {
        match self {
            Shape::Flat(_) => 1,
            Shape::Matrix { rows, .. } => rows,
        }
    }
    /// Columns: a flat array's length.
    pub fn cols(self) -> usize {
        match self {
            Shape::Flat(n) => n,
            Shape::Matrix { cols, .. } => cols,
        }
    }
    /// `[n]` or `[m, k]`, for messages.
    pub fn describe(self) -> String {
        match self {
            Shape::Flat(n) => format!("[{n}]"),
            Shape::Matrix { rows, cols } => format!("[{rows}][{cols}]"),
        }
    }
}

/// Row-major f64 data with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Array {
    data: Vec<f64>,
    shape: Shape,
}

impl Array {
    /// A flat array `[n]`.
    pub fn flat(data: Vec<f64>) -> Self {
        let n = data.len();
        Array {
            data,
            shape: Shape::Flat(n),
        }
    }

    /// A `rows × cols` matrix; `None` when `data.len() != rows * cols`.
    pub fn matrix(data: Vec<f64>, rows: usize, cols: usize) -> Option<Self> {
        (rows.checked_mul(cols) == Some(data.len())).then_some(Array {
            data,
            shape: Shape::Matrix { rows, cols },
        })
    }

    /// Data of `shape` (the caller guarantees `data.len() == shape.len()`; a
    /// mismatch yields a flat array rather than a panic).
    pub fn from_shape(data: Vec<f64>, shape: Shape) -> Self {
        if data.len() == shape.len() {
            Array { data, shape }
        } else {
            Array::flat(data)
        }
    }

    /// Same shape as `self`, other data (`None` when the length differs).
    pub fn with_data(&self, data: Vec<f64>) -> Option<Self> {
        (data.len() == self.data.len()).then_some(Array {
            data,
            shape: self.shape,
        })
    }

    /// Same shape as `self`, every element 0.
    pub fn zeros_like(&self) -> Self {
        Array {
            data: vec![0.0; self.data.len()],
            shape: self.shape,
        }
    }

    /// The shape as the client sent it.
    pub fn shape(&self) -> Shape {
        self.shape
    }
    /// Whether it was sent as `number[][]`.
    pub fn is_matrix(&self) -> bool {
        matches!(self.shape, Shape::Matrix { .. })
    }
    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Rows: a flat array is a single row.
    pub fn rows(&self) -> usize {
        self.shape.rows()
    }
    /// Elements per row (the length, for a flat array).
    pub fn cols(&self) -> usize {
        self.shape.cols()
    }
    /// The elements, row-major.
    pub fn data(&self) -> &[f64] {
        &self.data
    }
    /// The elements, row-major, to write in place.
    pub fn data_mut(&mut self) -> &mut [f64] {
        &mut self.data
    }
    /// The elements, row-major, without copying.
    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Row `r` (a flat array has the single row 0).
    pub fn row(&self, r: usize) -> &[f64] {
        let k = self.cols();
        &self.data[r * k..(r + 1) * k]
    }

    /// The rows in order (`chunks_exact` over the columns).
    pub fn row_iter(&self) -> std::slice::ChunksExact<'_, f64> {
        self.data.chunks_exact(self.cols().max(1))
    }

    /// JSON pointer to element `i` (row-major index): `/field/i` or `/field/r/c`.
    pub fn pointer(&self, field: &str, i: usize) -> String {
        element_pointer(self.shape, field, i)
    }

    /// JSON pointer to row `r`: `/field/r`, or `/field` for a flat array.
    pub fn row_pointer(&self, field: &str, r: usize) -> String {
        row_pointer(self.shape, field, r)
    }
}

/// JSON pointer to element `i` (row-major index) of an array of `shape`.
pub fn element_pointer(shape: Shape, field: &str, i: usize) -> String {
    match shape {
        Shape::Flat(_) => format!("/{field}/{i}"),
        Shape::Matrix { cols, .. } => format!("/{field}/{}/{}", i / cols.max(1), i % cols.max(1)),
    }
}

/// JSON pointer to row `r`: `/field/r`, or `/field` for a flat array.
pub fn row_pointer(shape: Shape, field: &str, r: usize) -> String {
    match shape {
        Shape::Flat(_) => format!("/{field}"),
        Shape::Matrix { .. } => format!("/{field}/{r}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_name_rows_and_columns() {
        let m = Array::matrix(vec![0.0; 6], 2, 3).unwrap();
        assert_eq!(m.pointer("targets", 4), "/targets/1/1");
        assert_eq!(m.row_pointer("targets", 1), "/targets/1");
        let f = Array::flat(vec![0.0; 3]);
        assert_eq!(f.pointer("predictions", 2), "/predictions/2");
        assert_eq!(f.row_pointer("predictions", 0), "/predictions");
        assert_eq!(f.rows(), 1);
        assert_eq!(f.cols(), 3);
    }

    #[test]
    fn matrix_rejects_a_wrong_length() {
        assert!(Array::matrix(vec![0.0; 5], 2, 3).is_none());
    }
}
