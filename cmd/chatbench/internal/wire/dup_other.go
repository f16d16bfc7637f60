//go:build !linux

package wire

import "errors"

func dupCloexec(int) (int, error) {
	return -1, errors.New("wire: detaching connections needs Linux")
}
