package bot

// EditDistance is the Levenshtein distance between a and b, in bytes, each
// cut to 128 bytes: enough to suggest the nearest command or model id for a
// typo without letting a pasted essay cost quadratic time.
func EditDistance(a, b string) int {
	if len(a) > 128 {
		a = a[:128]
	}
	if len(b) > 128 {
		b = b[:128]
	}
	var buf [2][129]int
	prev, cur := buf[0][:len(b)+1], buf[1][:len(b)+1]
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
