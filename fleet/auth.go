package fleet

import (
	"errors"
	"fmt"
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
			if u.NKey != "" && !nkeys.IsValidPublicUserKey(u.NKey) {
				errs = append(errs, fmt.Errorf("%w: auth: user %q: %q is not a public user nkey", ErrConfig, u.Name, u.NKey))
			}
		}
	}
	return errors.Join(errs...)
}

// Users returns the server's users: robots with RobotPermissions (JetStream API prefix
// "$JS.API": robots connected to the hub directly), operators unrestricted.
func (a *Auth) Users() ([]*server.User, []*server.NkeyUser) {
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
		add(u, RobotPermissions(u.Name, ""))
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
