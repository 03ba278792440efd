#!/usr/bin/perl
# Interop peer: Perl AnyEvent::WebSocket::Client, the library anyws ports,
# as a client. Usage: perl anyevent_peer.pl client|nested <url>
# Follows the fixed script in _scenarios.ts: print OPEN, echo, obey
# "cmd:close <code> <reason>", print CLOSED <code> <reason>.
# Also: perl anyevent_peer.pl hi_close <url> <rounds> [<code>] connects
# <rounds> times, one after the other, and each time sends "hi" and its
# close (with <code>, or AnyEvent's default close() without one) right
# after connecting, as Plack::App::WebSocket's own Echo test does; it
# prints "ROUND <n> GOT <text>" per message received and
# "ROUND <n> CLOSED <code>" at each finish, then "DONE".
use strict;
use warnings;
use AnyEvent;
use AnyEvent::WebSocket::Client;

binmode STDOUT, ':encoding(UTF-8)';
$| = 1;

my ($mode, $url, $rounds, $code) = @ARGV;
my $conn;    # held here: AnyEvent closes a connection nobody references
exit hi_close() if $mode eq 'hi_close';
my $done = AnyEvent->condvar;

# max_payload_size => 0: no limit (Protocol::WebSocket's default is 64 KiB).
my $client = AnyEvent::WebSocket::Client->new(
  subprotocol      => ['chat.v2', 'chat.v1'],
  max_payload_size => 0,
);

$client->connect($url)->cb(sub {
  $conn = eval { shift->recv };
  die "connect failed: $@" unless $conn;
  print "OPEN ", $conn->subprotocol, "\n";
  return nested() if $mode eq 'nested';

  # next_message delivers one message; re-arming it inside its own callback
  # (which AnyEvent supports) makes an ordered echo loop.
  my $echo;
  $echo = sub {
    my ($conn, $message) = @_;
    $conn->on(next_message => $echo);
    return if $message->is_text && $message->decoded_body =~ /^cmd:close /;
    $conn->send(AnyEvent::WebSocket::Message->new(
      opcode => $message->opcode,
      body   => $message->body,
    ));
  };
  $conn->on(next_message => $echo);

  # each_message sees every message too (after next_message handlers): it
  # obeys the close command.
  $conn->on(each_message => sub {
    my ($conn, $message) = @_;
    if ($message->is_text && $message->decoded_body =~ /^cmd:close (\d+) (.*)$/s) {
      $conn->close($1, $2);
    }
  });

  $conn->on(finish => sub {
    my ($conn) = @_;
    print "CLOSED ", ($conn->close_code // ''), " ", ($conn->close_reason // ''), "\n";
    $done->send;
  });
});

# "nested" mode prints which handler sees which message when an each_message
# handler is registered inside a next_message callback.
sub nested {
  $conn->on(next_message => sub {
    my ($conn, $message) = @_;
    print "NEXT ", $message->body, "\n";
    $conn->on(each_message => sub { print "EACH ", $_[1]->body, "\n" });
  });
  $conn->on(finish => sub { $done->send });
}

$done->recv;

sub hi_close {
  my $client = AnyEvent::WebSocket::Client->new;
  for my $round (1 .. $rounds) {
    my $finished = AnyEvent->condvar;
    $client->connect($url)->cb(sub {
      $conn = eval { shift->recv };    # held: see $conn above
      die "connect failed: $@" unless $conn;
      $conn->on(each_message => sub {
        print "ROUND $round GOT ", $_[1]->decoded_body, "\n";
      });
      $conn->on(finish => sub {
        print "ROUND $round CLOSED ", ($_[0]->close_code // ''), "\n";
        $finished->send;
      });
      $conn->send('hi');
      defined $code ? $conn->close($code) : $conn->close;
    });
    $finished->recv;
  }
  print "DONE\n";
  return 0;
}
