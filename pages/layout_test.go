package pages

import (
	"strings"
	"testing"
)

func TestLayoutFits(t *testing.T) {
	obj := func(n int) Object { return Object{format: JSON, text: `"` + strings.Repeat("x", n-2) + `"`} }
	tests := []struct {
		name   string
		layout Layout
		page   []Object
		obj    Object
		want   bool
	}{
		{"empty page", Layout{PageSize: 10}, nil, obj(100), true},
		{"empty page, one per page", Layout{OneObjectPerPage: true}, nil, obj(10), true},
		{"one per page", Layout{OneObjectPerPage: true}, []Object{obj(2)}, obj(2), false},
		{"exactly full", Layout{PageSize: 2 * (10 + ObjectOverhead)}, []Object{obj(10)}, obj(10), true},
		{"one byte over", Layout{PageSize: 2*(10+ObjectOverhead) - 1}, []Object{obj(10)}, obj(10), false},
		{"default size fits", Layout{}, []Object{obj(4000)}, obj(4000), true},
		{"default size full", Layout{}, []Object{obj(4000), obj(4000)}, obj(200), false},
		{"negative means default", Layout{PageSize: -1}, []Object{obj(4000)}, obj(4000), true},
		{"page already over", Layout{PageSize: 10}, []Object{obj(100)}, obj(2), false},
		{"full over three objects", Layout{PageSize: 3 * (10 + ObjectOverhead)}, []Object{obj(10), obj(10)}, obj(11), false},
		{"fits over three objects", Layout{PageSize: 3 * (10 + ObjectOverhead)}, []Object{obj(10), obj(10)}, obj(10), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.layout.Fits(tc.page, tc.obj); got != tc.want {
				t.Errorf("%+v.Fits(%d objects, %d bytes) = %v, want %v", tc.layout, len(tc.page), tc.obj.Size(), got, tc.want)
			}
			for cut := 0; cut <= len(tc.page); cut++ { // the page in two parts, split anywhere
				if got := tc.layout.FitsAfter(tc.page[:cut], tc.page[cut:], tc.obj); got != tc.want {
					t.Errorf("%+v.FitsAfter(%d + %d objects, %d bytes) = %v, want %v", tc.layout, cut, len(tc.page)-cut, tc.obj.Size(), got, tc.want)
				}
			}
		})
	}
	if got := (Layout{}).Limit(); got != DefaultPageSize {
		t.Errorf("Layout{}.Limit() = %d, want %d", got, DefaultPageSize)
	}
}
