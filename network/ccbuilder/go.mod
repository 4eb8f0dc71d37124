module github.com/fabricml/fabricml/network/ccbuilder

go 1.24.2
