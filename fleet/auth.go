package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// Auth lists who may connect to a hub: robots, each confined to its own subjects and model key
// (RobotPermissions), and operators with every permission (`flowact fleet push`, `flowact fleet
// status`, `flowact export`, the VLM publishing embeddings). Each user has a password or an
// nkey (a public user key, "U..."), not both. It is the `flowact hub --auth FILE` file.
type Auth struct {
	Robots    []AuthUser `yaml:"robots"`
	Operators []AuthUser `yaml:"operators"`
}

// AuthUser is one user.
type AuthUser struct {
	Name     string `yaml:"name"` // the robot id for robots; the user name for password logins
	Password string `yaml:"password"`
	NKey     string `yaml:"nkey"`
	// Domain is a robot's JetStream domain when its own nats-server links to the hub as a
	// leaf node authenticating as this user; "" means the robot's name. Unused for operators.
	Domain string `yaml:"domain"`
}

// Validate checks the users.
func (a *Auth) Validate() error {
	seen := map[string]bool{}
	var errs []error
	for _, list := range [][]AuthUser{a.Robots, a.Operators} {
		for _, u := range list {
			if err := ValidName(u.Name); err != nil {
				errs = append(errs, fmt.Errorf("auth: user: %w", err))
			}
			if seen[u.Name] {
				errs = append(errs, fmt.Errorf("%w: auth: user %q twice", ErrConfig, u.Name))
			}
			seen[u.Name] = true
			if (u.Password == "") == (u.NKey == "") {
				errs = append(errs, fmt.Errorf("%w: auth: user %q: set a password or an nkey, not both", ErrConfig, u.Name))
			}
			if u.Domain != "" && ValidName(u.Domain) != nil {
				errs = append(errs, fmt.Errorf("%w: auth: user %q: domain %q: want letters, digits, '-' or '_'", ErrConfig, u.Name, u.Domain))
			}
			if u.NKey != "" && !nkeys.IsValidPublicUserKey(u.NKey) {
				errs = append(errs, fmt.Errorf("%w: auth: user %q: %q is not a public user nkey", ErrConfig, u.Name, u.NKey))
			}
		}
	}
	return errors.Join(errs...)
}

// Users returns the server's users for a hub in JetStream domain hubDomain: robots with
// LeafPermissions (RobotPermissions, for a robot connected to the hub directly or through its
// own leaf node: nats-server authenticates leaf connections as these users when the leaf port
// has none of its own, and applies their permissions to the link), operators unrestricted.
func (a *Auth) Users(hubDomain string) ([]*server.User, []*server.NkeyUser) {
	var users []*server.User
	var nk []*server.NkeyUser
	add := func(u AuthUser, p *server.Permissions) {
		if u.NKey != "" {
			nk = append(nk, &server.NkeyUser{Nkey: u.NKey, Permissions: p})
		} else {
			users = append(users, &server.User{Username: u.Name, Password: u.Password, Permissions: p})
		}
	}
	for _, u := range a.Robots {
		d := u.Domain
		if d == "" {
			d = u.Name
		}
		add(u, LeafPermissions(u.Name, d, hubDomain))
	}
	for _, u := range a.Operators {
		add(u, nil)
	}
	return users, nk
}

// RobotPermissions confines a robot's connection: it may publish only under flowact.<robot>.>,
// manage only its own episode stream, put only its own key in the status bucket, read (get and
// watch) only its own key in the model bucket, read model bundles from the checkpoint store,
// and receive only on its own subjects and inbox (InboxPrefix). api is the JetStream API prefix
// the robot uses: "" means "$JS.API" (the hub's own domain), else e.g. "$JS.hub.API".
func RobotPermissions(robot, api string) *server.Permissions {
	if api == "" {
		api = "$JS.API"
	}
	ep, st, md, ck := EpisodeStream(robot), "KV_"+StatusBucket, "KV_"+ModelBucket, "OBJ_"+CheckpointBucket
	pub := []string{
		RobotSubjects(robot),
		api + ".INFO",
		api + ".STREAM.INFO." + ep, api + ".STREAM.CREATE." + ep, api + ".STREAM.UPDATE." + ep,
		api + ".STREAM.INFO." + st, "$KV." + StatusBucket + "." + robot,
		api + ".STREAM.INFO." + md,
		api + ".DIRECT.GET." + md + ".$KV." + ModelBucket + "." + robot,
		api + ".CONSUMER.CREATE." + md + ".*.$KV." + ModelBucket + "." + robot,
		api + ".STREAM.INFO." + ck,
		api + ".DIRECT.GET." + ck + ".$O." + CheckpointBucket + ".M.>",
		api + ".CONSUMER.CREATE." + ck + ".*.$O." + CheckpointBucket + ".C.>",
		"$JS.FC.>", // flow control replies of ordered consumers
	}
	sub := []string{RobotSubjects(robot), InboxPrefix(robot) + ".>"}
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: pub},
		Subscribe: &server.SubjectPermission{Allow: sub},
	}
}

// PermissionsSummary is RobotPermissions as text, for `flowact hub --help` and docs.
func PermissionsSummary(robot string) string {
	p := RobotPermissions(robot, "")
	return "publish: " + strings.Join(p.Publish.Allow, " ") + "\nsubscribe: " + strings.Join(p.Subscribe.Allow, " ")
}

// LeafPermissions is RobotPermissions for a robot that may also link its own nats-server
// (JetStream domain domain) to the hub (JetStream domain hubDomain) as a leaf node
// authenticating as the robot's user. nats-server applies a user's permissions to a leaf
// connection as the leaf's view (it reverses them on the hub's side): the robot's server may
// send the hub what RobotPermissions lets the robot publish, also with the hub's JetStream API
// reached across domains ($JS.<hubDomain>.API, as the robot's client asks for the buckets), and
// receive the robot's own subjects and inbox, and the hub's requests into the robot's domain
// ($JS.<domain>.API: the hub's sourcing of the robot's stream).
func LeafPermissions(robot, domain, hubDomain string) *server.Permissions {
	p := RobotPermissions(robot, "")
	if hubDomain != "" {
		for _, s := range RobotPermissions(robot, "$JS."+hubDomain+".API").Publish.Allow {
			if !slices.Contains(p.Publish.Allow, s) {
				p.Publish.Allow = append(p.Publish.Allow, s)
			}
		}
	}
	if domain != "" {
		// The hub's sourcing: its requests into the robot's domain come in, the robot's server
		// replies ($JSC.R.<random>, the hub's reply subjects for consumer creation) and
		// delivers under the robot's prefix (SourceDeliverPrefix), and its flow-control
		// requests are answered ($JS.FC.>).
		p.Publish.Allow = append(p.Publish.Allow, "$JSC.R.>")
		p.Subscribe.Allow = append(p.Subscribe.Allow, "$JS."+domain+".API.>", "$JS.FC.>")
	}
	return p
}
