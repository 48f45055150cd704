"""Weight quantization passes (one algorithm per file) and the grid maths they share (`grid`)."""
