//go:build !amd64

package vec

import "testing"

func forEachPath(t *testing.T, check func(*testing.T)) { t.Run("go", check) }
