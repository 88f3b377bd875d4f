# A perl program across a checkpoint: hashes, floats, strings and a regex
# computed before and after the sync point (@@sync on stderr, then a line
# read from stdin).
use strict;
use warnings;

my %h;
my $x = 0.5;
for my $i (1 .. 2000) {
	$x = 3.7 * $x * (1 - $x);
	$h{"key$i"} = sprintf("%.12f", $x);
}
print "before: ", scalar(keys %h), " keys, x=", sprintf("%.15g", $x), "\n";
my $words = join(" ", map { "w$_" } 1 .. 100);

$| = 0;
print STDERR "\@\@sync\n";
my $line = <STDIN>;
chomp $line;
die "expected go, got '$line'\n" unless $line eq "go";

my $sum = 0;
$sum += $h{$_} for sort keys %h;
printf "after: sum=%.9f key777=%s\n", $sum, $h{key777};
my @m = ($words =~ /w(\d*7)\b/g);
print "matches: ", scalar(@m), " last=$m[-1]\n";
for my $i (1 .. 1000) {
	$x = 3.7 * $x * (1 - $x);
}
printf "x=%.15g\n", $x;
