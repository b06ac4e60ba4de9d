package sqlstore

import (
	"context"
	"strconv"
)

// getOne runs query, which selects at most one row, on r and scans the
// row with scan. No row is store.ErrNotFound; every error is classified.
func getOne[T any](ctx context.Context, r *reader, scan func(rowScanner) (T, error), query string, args ...any) (T, error) {
	var zero T
	ctx, err := r.begin(ctx)
	if err != nil {
		return zero, err
	}
	v, err := scan(r.q.QueryRowContext(ctx, query, args...))
	if err != nil {
		return zero, r.d.classify(err)
	}
	return v, nil
}

// queryAll runs query on r and scans every row with scan. The errors of
// the query and of the row set are classified; scan's are returned as
// they are.
func queryAll[T any](ctx context.Context, r *reader, scan func(rowScanner) (T, error), query string, args ...any) ([]T, error) {
	ctx, err := r.begin(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := r.q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, r.d.classify(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, r.d.classify(err)
	}
	return out, nil
}

// limit is the LIMIT clause of a page of size items: one more row than
// the page holds tells nextPage whether another page follows.
func limit(size int) string {
	return ` LIMIT ` + strconv.Itoa(size+1)
}

// nextPage cuts out, the rows of a query ending in limit(size), to size
// items and returns them with the token of the next page, whose key is
// key of the page's last item ("" when no page follows).
func nextPage[T any](out []T, size int, kind string, key func(T) string) ([]T, string) {
	if len(out) <= size {
		return out, ""
	}
	out = out[:size]
	return out, encodeToken(kind, key(out[size-1]))
}

// queryArgs are the arguments of a query built clause by clause.
type queryArgs []any

// add appends v and returns its placeholder ($1, $2, ...).
func (a *queryArgs) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}
